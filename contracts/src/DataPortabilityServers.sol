// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712Upgradeable} from "@openzeppelin/contracts-upgradeable/utils/cryptography/EIP712Upgradeable.sol";
import {VanaUpgradeable} from "./common/VanaUpgradeable.sol";
import {IDataPortabilityServers} from "./interfaces/IDataPortabilityServers.sol";

/// @title DataPortabilityServers
/// @notice Personal servers and which users trust them. Signed calls use the EIP-712 domain
/// ("VanaDataPortabilityServers", "1") with a per-user nonce that is separate from the
/// Permissions contract's nonce.
contract DataPortabilityServers is VanaUpgradeable, EIP712Upgradeable, IDataPortabilityServers {
    using EnumerableSet for EnumerableSet.UintSet;

    bytes32 public constant PERMISSION_MANAGER_ROLE = keccak256("PERMISSION_MANAGER_ROLE");

    bytes32 private constant ADD_SERVER_TYPEHASH =
        keccak256("AddServer(uint256 nonce,address serverAddress,string publicKey,string serverUrl)");
    bytes32 private constant TRUST_SERVER_TYPEHASH = keccak256("TrustServer(uint256 nonce,uint256 serverId)");
    bytes32 private constant UNTRUST_SERVER_TYPEHASH = keccak256("UntrustServer(uint256 nonce,uint256 serverId)");

    struct Server {
        address owner;
        address serverAddress;
        string publicKey;
        string url;
    }

    struct Trust {
        uint256 startBlock;
        uint256 endBlock;
    }

    struct User {
        uint256 nonce;
        EnumerableSet.UintSet trustedServerIds;
        mapping(uint256 serverId => Trust) trust;
    }

    uint256 public serversCount;
    mapping(uint256 serverId => Server) internal _servers;
    mapping(address serverAddress => uint256 serverId) public serverAddressToId;
    mapping(address userAddress => User) internal _users;

    error ZeroAddress();
    error EmptyPublicKey();
    error EmptyUrl();
    error InvalidNonce(uint256 expectedNonce, uint256 providedNonce);
    error NotServerOwner(address serverOwner, address requestor);
    error ServerAlreadyRegistered();
    error ServerAlreadyTrusted();
    error ServerAlreadyUntrusted();
    error ServerNotFound();
    error ServerNotTrusted();
    error ServerUrlMismatch(string existingUrl, string providedUrl);

    event ServerRegistered(
        uint256 indexed serverId, address indexed owner, address indexed serverAddress, string publicKey, string url
    );
    event ServerUpdated(uint256 indexed serverId, string url);
    event ServerTrusted(address indexed user, uint256 indexed serverId);
    event ServerUntrusted(address indexed user, uint256 indexed serverId);

    function initialize(address trustedForwarderAddress, address ownerAddress) external initializer {
        __VanaUpgradeable_init(trustedForwarderAddress, ownerAddress);
        __EIP712_init("VanaDataPortabilityServers", "1");
    }

    // ---------------------------------------------------------------- views

    function userNonce(address userAddress) external view returns (uint256) {
        return _users[userAddress].nonce;
    }

    function users(address userAddress) external view returns (uint256 nonce, uint256[] memory trustedServerIds) {
        User storage user = _users[userAddress];
        return (user.nonce, user.trustedServerIds.values());
    }

    function servers(uint256 serverId) external view returns (ServerInfo memory) {
        return _serverInfo(serverId);
    }

    function serverByAddress(address serverAddress) external view returns (ServerInfo memory) {
        return _serverInfo(serverAddressToId[serverAddress]);
    }

    function userServerIdsValues(address userAddress) external view returns (uint256[] memory) {
        return _users[userAddress].trustedServerIds.values();
    }

    function userServerIdsLength(address userAddress) external view returns (uint256) {
        return _users[userAddress].trustedServerIds.length();
    }

    function userServerIdsAt(address userAddress, uint256 serverIndex) external view returns (uint256) {
        return _users[userAddress].trustedServerIds.at(serverIndex);
    }

    function userServers(address userAddress, uint256 serverId) public view returns (TrustedServerInfo memory) {
        Server storage server = _servers[serverId];
        Trust storage trust = _users[userAddress].trust[serverId];
        return TrustedServerInfo({
            id: serverId,
            owner: server.owner,
            serverAddress: server.serverAddress,
            publicKey: server.publicKey,
            url: server.url,
            startBlock: trust.startBlock,
            endBlock: trust.endBlock
        });
    }

    function userServerValues(address userAddress) external view returns (TrustedServerInfo[] memory list) {
        uint256[] memory ids = _users[userAddress].trustedServerIds.values();
        list = new TrustedServerInfo[](ids.length);
        for (uint256 i = 0; i < ids.length; i++) {
            list[i] = userServers(userAddress, ids[i]);
        }
    }

    // ---------------------------------------------------------------- signed (gasless) calls

    function addServerWithSignature(AddServerWithSignatureInput calldata addServerInput, bytes calldata signature)
        external
        whenNotPaused
    {
        address signer = _verifyAddServer(addServerInput, signature);
        _addServer(signer, addServerInput.serverAddress, addServerInput.publicKey, addServerInput.serverUrl);
    }

    function addAndTrustServerWithSignature(
        AddServerWithSignatureInput calldata addServerInput,
        bytes calldata signature
    ) external whenNotPaused {
        address signer = _verifyAddServer(addServerInput, signature);
        uint256 serverId =
            _addServer(signer, addServerInput.serverAddress, addServerInput.publicKey, addServerInput.serverUrl);
        _trustServer(signer, serverId);
    }

    function trustServerWithSignature(TrustServerInput calldata trustServerInput, bytes calldata signature)
        external
        whenNotPaused
    {
        bytes32 structHash =
            keccak256(abi.encode(TRUST_SERVER_TYPEHASH, trustServerInput.nonce, trustServerInput.serverId));
        address signer = ECDSA.recover(_hashTypedDataV4(structHash), signature);
        _useNonce(signer, trustServerInput.nonce);
        _trustServer(signer, trustServerInput.serverId);
    }

    function untrustServerWithSignature(UntrustServerInput calldata untrustServerInput, bytes calldata signature)
        external
        whenNotPaused
    {
        bytes32 structHash =
            keccak256(abi.encode(UNTRUST_SERVER_TYPEHASH, untrustServerInput.nonce, untrustServerInput.serverId));
        address signer = ECDSA.recover(_hashTypedDataV4(structHash), signature);
        _useNonce(signer, untrustServerInput.nonce);
        _untrustServer(signer, untrustServerInput.serverId);
    }

    // ---------------------------------------------------------------- direct calls

    function trustServer(uint256 serverId) external whenNotPaused {
        _trustServer(_msgSender(), serverId);
    }

    function untrustServer(uint256 serverId) external whenNotPaused {
        _untrustServer(_msgSender(), serverId);
    }

    function updateServer(uint256 serverId, string calldata url) external whenNotPaused {
        Server storage server = _servers[serverId];
        if (server.owner == address(0)) revert ServerNotFound();
        if (server.owner != _msgSender()) revert NotServerOwner(server.owner, _msgSender());
        if (bytes(url).length == 0) revert EmptyUrl();
        server.url = url;
        emit ServerUpdated(serverId, url);
    }

    // ---------------------------------------------------------------- manager calls

    /// @notice Registers the server for `ownerAddress` (or finds it, if the URL matches) and makes
    /// `ownerAddress` trust it; already-trusted is not an error here.
    function addAndTrustServerByManager(address ownerAddress, AddServerInput memory addServerInput)
        external
        override
        onlyRole(PERMISSION_MANAGER_ROLE)
        whenNotPaused
    {
        uint256 serverId = serverAddressToId[addServerInput.serverAddress];
        if (serverId == 0) {
            serverId =
                _addServer(ownerAddress, addServerInput.serverAddress, addServerInput.publicKey, addServerInput.serverUrl);
        } else if (keccak256(bytes(_servers[serverId].url)) != keccak256(bytes(addServerInput.serverUrl))) {
            revert ServerUrlMismatch(_servers[serverId].url, addServerInput.serverUrl);
        }
        if (!_isTrusted(ownerAddress, serverId)) _trustServer(ownerAddress, serverId);
    }

    function trustServerByManager(address userAddress, uint256 serverId)
        external
        onlyRole(PERMISSION_MANAGER_ROLE)
        whenNotPaused
    {
        _trustServer(userAddress, serverId);
    }

    function setUserNonce(address userAddress, uint256 nonce) external onlyRole(MAINTAINER_ROLE) {
        _users[userAddress].nonce = nonce;
    }

    // ---------------------------------------------------------------- internals

    function _verifyAddServer(AddServerWithSignatureInput calldata input, bytes calldata signature)
        internal
        returns (address signer)
    {
        bytes32 structHash = keccak256(
            abi.encode(
                ADD_SERVER_TYPEHASH,
                input.nonce,
                input.serverAddress,
                keccak256(bytes(input.publicKey)),
                keccak256(bytes(input.serverUrl))
            )
        );
        signer = ECDSA.recover(_hashTypedDataV4(structHash), signature);
        _useNonce(signer, input.nonce);
    }

    function _useNonce(address userAddress, uint256 nonce) internal {
        User storage user = _users[userAddress];
        if (nonce != user.nonce) revert InvalidNonce(user.nonce, nonce);
        user.nonce = nonce + 1;
    }

    function _addServer(address owner, address serverAddress, string memory publicKey, string memory url)
        internal
        returns (uint256 serverId)
    {
        if (serverAddress == address(0)) revert ZeroAddress();
        if (bytes(publicKey).length == 0) revert EmptyPublicKey();
        if (bytes(url).length == 0) revert EmptyUrl();
        if (serverAddressToId[serverAddress] != 0) revert ServerAlreadyRegistered();

        serverId = ++serversCount;
        _servers[serverId] = Server({owner: owner, serverAddress: serverAddress, publicKey: publicKey, url: url});
        serverAddressToId[serverAddress] = serverId;
        emit ServerRegistered(serverId, owner, serverAddress, publicKey, url);
    }

    function _isTrusted(address userAddress, uint256 serverId) internal view returns (bool) {
        User storage user = _users[userAddress];
        return user.trustedServerIds.contains(serverId) && user.trust[serverId].endBlock > block.number;
    }

    function _trustServer(address userAddress, uint256 serverId) internal {
        if (serverId == 0 || serverId > serversCount) revert ServerNotFound();
        if (_isTrusted(userAddress, serverId)) revert ServerAlreadyTrusted();
        User storage user = _users[userAddress];
        user.trustedServerIds.add(serverId);
        user.trust[serverId] = Trust({startBlock: block.number, endBlock: type(uint256).max});
        emit ServerTrusted(userAddress, serverId);
    }

    function _untrustServer(address userAddress, uint256 serverId) internal {
        if (serverId == 0 || serverId > serversCount) revert ServerNotFound();
        User storage user = _users[userAddress];
        if (!user.trustedServerIds.contains(serverId)) revert ServerNotTrusted();
        if (user.trust[serverId].endBlock <= block.number) revert ServerAlreadyUntrusted();
        user.trust[serverId].endBlock = block.number;
        emit ServerUntrusted(userAddress, serverId);
    }

    function _serverInfo(uint256 serverId) internal view returns (ServerInfo memory) {
        Server storage server = _servers[serverId];
        return ServerInfo({
            id: server.owner == address(0) ? 0 : serverId,
            owner: server.owner,
            serverAddress: server.serverAddress,
            publicKey: server.publicKey,
            url: server.url
        });
    }
}
