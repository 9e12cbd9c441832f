// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Types and the cross-contract surface of DataPortabilityServers.
interface IDataPortabilityServers {
    struct ServerInfo {
        uint256 id;
        address owner;
        address serverAddress;
        string publicKey;
        string url;
    }

    struct TrustedServerInfo {
        uint256 id;
        address owner;
        address serverAddress;
        string publicKey;
        string url;
        uint256 startBlock;
        uint256 endBlock;
    }

    struct AddServerInput {
        address serverAddress;
        string publicKey;
        string serverUrl;
    }

    struct AddServerWithSignatureInput {
        uint256 nonce;
        address serverAddress;
        string publicKey;
        string serverUrl;
    }

    struct TrustServerInput {
        uint256 nonce;
        uint256 serverId;
    }

    struct UntrustServerInput {
        uint256 nonce;
        uint256 serverId;
    }

    function addAndTrustServerByManager(address ownerAddress, AddServerInput memory addServerInput) external;
}
