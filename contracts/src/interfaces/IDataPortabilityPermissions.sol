// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IDataRegistry} from "./IDataRegistry.sol";

/// @notice Types of DataPortabilityPermissions (Vana `version() == 2` shapes).
interface IDataPortabilityPermissions {
    struct PermissionInput {
        uint256 nonce;
        uint256 granteeId;
        string grant;
        uint256[] fileIds;
    }

    struct PermissionInfo {
        uint256 id;
        address grantor;
        uint256 nonce;
        uint256 granteeId;
        string grant;
        uint256 startBlock;
        uint256 endBlock;
        uint256[] fileIds;
    }

    struct RevokePermissionInput {
        uint256 nonce;
        uint256 permissionId;
    }

    struct ServerFilesAndPermissionInput {
        uint256 nonce;
        uint256 granteeId;
        string grant;
        string[] fileUrls;
        uint256[] schemaIds;
        address serverAddress;
        string serverUrl;
        string serverPublicKey;
        IDataRegistry.Permission[][] filePermissions;
    }
}
