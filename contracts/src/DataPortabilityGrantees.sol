// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {VanaUpgradeable} from "./common/VanaUpgradeable.sol";
import {IDataPortabilityGrantees} from "./interfaces/IDataPortabilityGrantees.sol";

/// @title DataPortabilityGrantees
/// @notice Registry of grantees (apps), ids from 1; the Permissions contract records each
/// permission granted to a grantee (PERMISSION_MANAGER_ROLE).
contract DataPortabilityGrantees is VanaUpgradeable, IDataPortabilityGrantees {
    using EnumerableSet for EnumerableSet.UintSet;

    bytes32 public constant PERMISSION_MANAGER_ROLE = keccak256("PERMISSION_MANAGER_ROLE");

    struct Grantee {
        address owner;
        address granteeAddress;
        string publicKey;
        EnumerableSet.UintSet permissionIds;
    }

    uint256 public override granteesCount;
    mapping(uint256 granteeId => Grantee) internal _grantees;
    mapping(address granteeAddress => uint256 granteeId) public granteeAddressToId;

    error ZeroAddress();
    error EmptyPublicKey();
    error GranteeAlreadyRegistered();
    error GranteeNotFound();
    error UnauthorizedRegistration();

    event GranteeRegistered(
        uint256 indexed granteeId, address indexed owner, address indexed granteeAddress, string publicKey
    );

    function initialize(address trustedForwarderAddress, address ownerAddress) external initializer {
        __VanaUpgradeable_init(trustedForwarderAddress, ownerAddress);
    }

    /// @notice Registers a grantee. The caller needs MAINTAINER_ROLE unless `owner == granteeAddress`.
    function registerGrantee(address owner, address granteeAddress, string memory publicKey)
        external
        whenNotPaused
        returns (uint256)
    {
        if (owner == address(0) || granteeAddress == address(0)) revert ZeroAddress();
        if (bytes(publicKey).length == 0) revert EmptyPublicKey();
        if (owner != granteeAddress && !hasRole(MAINTAINER_ROLE, msg.sender)) revert UnauthorizedRegistration();
        if (granteeAddressToId[granteeAddress] != 0) revert GranteeAlreadyRegistered();

        uint256 granteeId = ++granteesCount;
        Grantee storage grantee = _grantees[granteeId];
        grantee.owner = owner;
        grantee.granteeAddress = granteeAddress;
        grantee.publicKey = publicKey;
        granteeAddressToId[granteeAddress] = granteeId;

        emit GranteeRegistered(granteeId, owner, granteeAddress, publicKey);
        return granteeId;
    }

    function grantees(uint256 granteeId) external view returns (GranteeInfo memory) {
        return _info(granteeId);
    }

    function granteeInfo(uint256 granteeId) external view returns (GranteeInfo memory) {
        return _info(granteeId);
    }

    function granteeByAddress(address granteeAddress) external view returns (GranteeInfo memory) {
        return _info(granteeAddressToId[granteeAddress]);
    }

    function granteesV2(uint256 granteeId) external view returns (GranteeInfoV2 memory) {
        return _infoV2(granteeId);
    }

    function granteeInfoV2(uint256 granteeId) external view returns (GranteeInfoV2 memory) {
        return _infoV2(granteeId);
    }

    function granteeByAddressV2(address granteeAddress) external view returns (GranteeInfoV2 memory) {
        return _infoV2(granteeAddressToId[granteeAddress]);
    }

    function granteePermissions(uint256 granteeId) external view returns (uint256[] memory) {
        return _grantees[granteeId].permissionIds.values();
    }

    /// @notice A page of the grantee's permission ids, the total count, and whether more follow.
    function granteePermissionsPaginated(uint256 granteeId, uint256 offset, uint256 limit)
        external
        view
        returns (uint256[] memory permissionIds, uint256 totalCount, bool hasMore)
    {
        EnumerableSet.UintSet storage ids = _grantees[granteeId].permissionIds;
        totalCount = ids.length();
        uint256 end = offset + limit > totalCount ? totalCount : offset + limit;
        uint256 n = offset < end ? end - offset : 0;
        permissionIds = new uint256[](n);
        for (uint256 i = 0; i < n; i++) {
            permissionIds[i] = ids.at(offset + i);
        }
        hasMore = end < totalCount;
    }

    function granteePermissionIds(uint256 granteeId) external view returns (uint256[] memory) {
        return _grantees[granteeId].permissionIds.values();
    }

    function addPermissionToGrantee(uint256 granteeId, uint256 permissionId)
        external
        override
        onlyRole(PERMISSION_MANAGER_ROLE)
    {
        if (granteeId == 0 || granteeId > granteesCount) revert GranteeNotFound();
        _grantees[granteeId].permissionIds.add(permissionId);
    }

    function removePermissionFromGrantee(uint256 granteeId, uint256 permissionId)
        external
        override
        onlyRole(PERMISSION_MANAGER_ROLE)
    {
        if (granteeId == 0 || granteeId > granteesCount) revert GranteeNotFound();
        _grantees[granteeId].permissionIds.remove(permissionId);
    }

    function _infoV2(uint256 granteeId) internal view returns (GranteeInfoV2 memory) {
        Grantee storage grantee = _grantees[granteeId];
        return GranteeInfoV2({
            owner: grantee.owner,
            granteeAddress: grantee.granteeAddress,
            publicKey: grantee.publicKey,
            permissionsCount: grantee.permissionIds.length()
        });
    }

    function _info(uint256 granteeId) internal view returns (GranteeInfo memory) {
        Grantee storage grantee = _grantees[granteeId];
        return GranteeInfo({
            owner: grantee.owner,
            granteeAddress: grantee.granteeAddress,
            publicKey: grantee.publicKey,
            permissionIds: grantee.permissionIds.values()
        });
    }
}
