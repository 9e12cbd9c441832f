// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MulticallUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/MulticallUpgradeable.sol";
import {ContextUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/ContextUpgradeable.sol";
import {VanaUpgradeable} from "./common/VanaUpgradeable.sol";
import {IDataRegistry, IDataRefinerRegistry} from "./interfaces/IDataRegistry.sol";

/// @title DataRegistry
/// @notice The registry of encrypted user files: one id per unique URL (ids from 1), per-account
/// encrypted keys, and proofs (indices from 1). Mirrors Vana's DataRegistry v2 ABI for every
/// call the data-portability flow makes.
contract DataRegistry is VanaUpgradeable, MulticallUpgradeable, IDataRegistry {
    bytes32 public constant DATA_PORTABILITY_ROLE = keccak256("DATA_PORTABILITY_ROLE");
    bytes32 public constant REFINEMENT_SERVICE_ROLE = keccak256("REFINEMENT_SERVICE_ROLE");

    struct File {
        address ownerAddress;
        string url;
        uint256 addedAtBlock;
        uint256 proofsCount;
        mapping(uint256 proofIndex => Proof) proofs;
        mapping(address account => string key) permissions;
        uint256 schemaId;
    }

    uint256 public filesCount;
    mapping(uint256 fileId => File) internal _files;
    mapping(bytes32 urlHash => uint256 fileId) internal _fileIdByUrlHash;
    address public dataRefinerRegistry;
    bool public emitLegacyEvents;

    error NotFileOwner();
    error FileUrlAlreadyUsed();
    error FileNotFound();
    error NoPermission();
    error InvalidUrl();
    error InvalidSchemaId(uint256 schemaId);

    event FileAdded(uint256 indexed fileId, address indexed ownerAddress, string url);
    event FileAddedV2(uint256 indexed fileId, address indexed ownerAddress, string url, uint256 schemaId);
    event PermissionGranted(uint256 indexed fileId, address indexed account);
    event ProofAdded(
        uint256 indexed fileId,
        address indexed ownerAddress,
        uint256 proofIndex,
        uint256 indexed dlpId,
        uint256 score,
        string proofUrl
    );

    function initialize(address trustedForwarderAddress, address ownerAddress) external initializer {
        __VanaUpgradeable_init(trustedForwarderAddress, ownerAddress);
        emitLegacyEvents = true;
    }

    function version() external pure returns (uint256) {
        return 2;
    }

    // ---------------------------------------------------------------- admin

    function updateDataRefinerRegistry(address newDataRefinerRegistry) external onlyRole(MAINTAINER_ROLE) {
        dataRefinerRegistry = newDataRefinerRegistry;
    }

    function updateEmitLegacyEvents(bool newEmitLegacyEvents) external onlyRole(MAINTAINER_ROLE) {
        emitLegacyEvents = newEmitLegacyEvents;
    }

    // ---------------------------------------------------------------- views

    function files(uint256 fileId) external view override returns (FileResponse memory) {
        File storage file = _files[fileId];
        return FileResponse({
            id: fileId,
            ownerAddress: file.ownerAddress,
            url: file.url,
            schemaId: file.schemaId,
            addedAtBlock: file.addedAtBlock
        });
    }

    function fileIdByUrl(string memory url) external view override returns (uint256) {
        return _fileIdByUrlHash[keccak256(abi.encodePacked(url))];
    }

    function filePermissions(uint256 fileId, address account) external view returns (string memory) {
        return _files[fileId].permissions[account];
    }

    function fileProofs(uint256 fileId, uint256 index) external view override returns (Proof memory) {
        return _files[fileId].proofs[index];
    }

    // ---------------------------------------------------------------- files

    function addFile(string memory url) external whenNotPaused returns (uint256) {
        return _addFile(url, _msgSender(), 0);
    }

    function addFileWithSchema(string memory url, uint256 schemaId) external whenNotPaused returns (uint256) {
        return _addFile(url, _msgSender(), schemaId);
    }

    /// @dev No check that the caller is `ownerAddress` (a relayer registers files for users).
    function addFileWithPermissions(string memory url, address ownerAddress, Permission[] memory permissions)
        external
        whenNotPaused
        returns (uint256)
    {
        uint256 fileId = _addFile(url, ownerAddress, 0);
        _addPermissions(fileId, permissions);
        return fileId;
    }

    /// @dev No check that the caller is `ownerAddress` (a relayer registers files for users).
    function addFileWithPermissionsAndSchema(
        string memory url,
        address ownerAddress,
        Permission[] memory permissions,
        uint256 schemaId
    ) external override whenNotPaused returns (uint256) {
        uint256 fileId = _addFile(url, ownerAddress, schemaId);
        _addPermissions(fileId, permissions);
        return fileId;
    }

    function addFilePermission(uint256 fileId, address account, string memory key) external whenNotPaused {
        _checkOwnerOrPortability(fileId);
        _addPermission(fileId, account, key);
    }

    function addFilePermissionsAndSchema(uint256 fileId, Permission[] memory permissions, uint256 schemaId)
        external
        override
        whenNotPaused
    {
        File storage file = _checkOwnerOrPortability(fileId);
        if (schemaId != 0) {
            _checkSchema(schemaId);
            file.schemaId = schemaId;
        }
        _addPermissions(fileId, permissions);
        emit FileAddedV2(fileId, file.ownerAddress, file.url, file.schemaId);
    }

    /// @dev No access control, as on the real network: the TEE pool calls it after checking the TEE.
    function addProof(uint256 fileId, Proof memory proof) external override whenNotPaused {
        File storage file = _files[fileId];
        if (file.ownerAddress == address(0)) revert FileNotFound();
        uint256 proofIndex = ++file.proofsCount;
        file.proofs[proofIndex] = proof;
        emit ProofAdded(
            fileId, file.ownerAddress, proofIndex, proof.data.dlpId, proof.data.score, proof.data.proofUrl
        );
    }

    // ---------------------------------------------------------------- internals

    function _addFile(string memory url, address ownerAddress, uint256 schemaId) internal returns (uint256) {
        if (bytes(url).length == 0) revert InvalidUrl();
        bytes32 urlHash = keccak256(abi.encodePacked(url));
        if (_fileIdByUrlHash[urlHash] != 0) revert FileUrlAlreadyUsed();
        if (schemaId != 0) _checkSchema(schemaId);

        uint256 fileId = ++filesCount;
        File storage file = _files[fileId];
        file.ownerAddress = ownerAddress;
        file.url = url;
        file.addedAtBlock = block.number;
        file.schemaId = schemaId;
        _fileIdByUrlHash[urlHash] = fileId;

        if (emitLegacyEvents) emit FileAdded(fileId, ownerAddress, url);
        emit FileAddedV2(fileId, ownerAddress, url, schemaId);
        return fileId;
    }

    function _addPermissions(uint256 fileId, Permission[] memory permissions) internal {
        for (uint256 i = 0; i < permissions.length; i++) {
            _addPermission(fileId, permissions[i].account, permissions[i].key);
        }
    }

    function _addPermission(uint256 fileId, address account, string memory key) internal {
        _files[fileId].permissions[account] = key;
        emit PermissionGranted(fileId, account);
    }

    function _checkOwnerOrPortability(uint256 fileId) internal view returns (File storage file) {
        file = _files[fileId];
        if (file.ownerAddress == address(0)) revert FileNotFound();
        if (file.ownerAddress != _msgSender() && !hasRole(DATA_PORTABILITY_ROLE, msg.sender)) {
            revert NotFileOwner();
        }
    }

    /// @dev Schema ids > 0 must be known to the schema registry (see `DataRefinerRegistry`).
    function _checkSchema(uint256 schemaId) internal view {
        address registry = dataRefinerRegistry;
        if (registry == address(0) || !IDataRefinerRegistry(registry).isValidSchemaId(schemaId)) {
            revert InvalidSchemaId(schemaId);
        }
    }

    // ---------------------------------------------------------------- context (forwarder-aware)

    function _msgSender() internal view override(ContextUpgradeable, VanaUpgradeable) returns (address) {
        return VanaUpgradeable._msgSender();
    }

    function _msgData() internal view override(ContextUpgradeable, VanaUpgradeable) returns (bytes calldata) {
        return VanaUpgradeable._msgData();
    }

    function _contextSuffixLength() internal view override(ContextUpgradeable, VanaUpgradeable) returns (uint256) {
        return VanaUpgradeable._contextSuffixLength();
    }
}
