// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Types and the cross-contract surface of DataPortabilityGrantees.
interface IDataPortabilityGrantees {
    struct GranteeInfo {
        address owner;
        address granteeAddress;
        string publicKey;
        uint256[] permissionIds;
    }

    struct GranteeInfoV2 {
        address owner;
        address granteeAddress;
        string publicKey;
        uint256 permissionsCount;
    }

    function granteesCount() external view returns (uint256);
    function addPermissionToGrantee(uint256 granteeId, uint256 permissionId) external;
    function removePermissionFromGrantee(uint256 granteeId, uint256 permissionId) external;
}
