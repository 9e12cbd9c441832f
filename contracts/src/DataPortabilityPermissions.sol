// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712Upgradeable} from "@openzeppelin/contracts-upgradeable/utils/cryptography/EIP712Upgradeable.sol";
import {VanaUpgradeable} from "./common/VanaUpgradeable.sol";
import {IDataRegistry} from "./interfaces/IDataRegistry.sol";
import {IDataPortabilityGrantees} from "./interfaces/IDataPortabilityGrantees.sol";
import {IDataPortabilityServers} from "./interfaces/IDataPortabilityServers.sol";
import {IDataPortabilityPermissions} from "./interfaces/IDataPortabilityPermissions.sol";

/// @title DataPortabilityPermissions
/// @notice Users grant grantees access to their files with an EIP-712 signature (domain
/// "VanaDataPortabilityPermissions", "1"); anyone may submit it (gasless relay). Per-user
/// nonces, permission ids from 1.
contract DataPortabilityPermissions is VanaUpgradeable, EIP712Upgradeable, IDataPortabilityPermissions {
    using EnumerableSet for EnumerableSet.UintSet;

    bytes32 private constant PERMISSION_TYPEHASH =
        keccak256("Permission(uint256 nonce,uint256 granteeId,string grant,uint256[] fileIds)");
    bytes32 private constant REVOKE_PERMISSION_TYPEHASH =
        keccak256("RevokePermission(uint256 nonce,uint256 permissionId)");
    bytes32 private constant SERVER_FILES_AND_PERMISSION_TYPEHASH = keccak256(
        "ServerFilesAndPermission(uint256 nonce,uint256 granteeId,string grant,string[] fileUrls,uint256[] schemaIds,address serverAddress,string serverUrl,string serverPublicKey,Permission[][] filePermissions)Permission(address account,string key)"
    );
    bytes32 private constant FILE_PERMISSION_TYPEHASH = keccak256("Permission(address account,string key)");

    struct PermissionStorage {
        address grantor;
        uint256 nonce;
        uint256 granteeId;
        string grant;
        uint256 startBlock;
        uint256 endBlock;
        EnumerableSet.UintSet fileIds;
    }

    struct User {
        uint256 nonce;
        EnumerableSet.UintSet permissionIds;
    }

    IDataRegistry public dataRegistry;
    IDataPortabilityServers public dataPortabilityServers;
    IDataPortabilityGrantees public dataPortabilityGrantees;
    uint256 public permissionsCount;
    mapping(uint256 permissionId => PermissionStorage) internal _permissions;
    mapping(address userAddress => User) internal _users;
    mapping(uint256 fileId => EnumerableSet.UintSet) internal _filePermissionIds;

    error ZeroAddress();
    error InvalidNonce(uint256 expectedNonce, uint256 providedNonce);
    error EmptyGrant();
    error GranteeNotFound();
    error NotFileOwner(address fileOwner, address requestor);
    error NotPermissionGrantor(address permissionOwner, address requestor);
    error InactivePermission(uint256 permissionId);
    error InvalidSchemaIdsLength(uint256 filesLength, uint256 schemaIdsLength);
    error InvalidPermissionsLength(uint256 filesLength, uint256 permissionsLength);

    event PermissionAdded(
        uint256 indexed permissionId, address indexed user, uint256 indexed granteeId, string grant, uint256[] fileIds
    );
    event PermissionRevoked(uint256 indexed permissionId);

    function initialize(
        address trustedForwarderAddress,
        address ownerAddress,
        address dataRegistryAddress,
        address serversContractAddr,
        address granteesContractAddr
    ) external initializer {
        __VanaUpgradeable_init(trustedForwarderAddress, ownerAddress);
        __EIP712_init("VanaDataPortabilityPermissions", "1");
        if (dataRegistryAddress == address(0) || serversContractAddr == address(0) || granteesContractAddr == address(0))
        {
            revert ZeroAddress();
        }
        dataRegistry = IDataRegistry(dataRegistryAddress);
        dataPortabilityServers = IDataPortabilityServers(serversContractAddr);
        dataPortabilityGrantees = IDataPortabilityGrantees(granteesContractAddr);
    }

    function version() external pure returns (uint256) {
        return 2;
    }

    // ---------------------------------------------------------------- admin

    function updateDataRegistry(address newDataRegistry) external onlyRole(MAINTAINER_ROLE) {
        dataRegistry = IDataRegistry(newDataRegistry);
    }

    function updateServersContract(address newServersContract) external onlyRole(MAINTAINER_ROLE) {
        dataPortabilityServers = IDataPortabilityServers(newServersContract);
    }

    function updateGranteesContract(address newGranteesContract) external onlyRole(MAINTAINER_ROLE) {
        dataPortabilityGrantees = IDataPortabilityGrantees(newGranteesContract);
    }

    // ---------------------------------------------------------------- views

    function userNonce(address userAddress) external view returns (uint256) {
        return _users[userAddress].nonce;
    }

    function users(address userAddress) external view returns (uint256 nonce, uint256[] memory permissionIds) {
        User storage user = _users[userAddress];
        return (user.nonce, user.permissionIds.values());
    }

    function permissions(uint256 permissionId) external view returns (PermissionInfo memory) {
        PermissionStorage storage p = _permissions[permissionId];
        return PermissionInfo({
            id: p.grantor == address(0) ? 0 : permissionId,
            grantor: p.grantor,
            nonce: p.nonce,
            granteeId: p.granteeId,
            grant: p.grant,
            startBlock: p.startBlock,
            endBlock: p.endBlock,
            fileIds: p.fileIds.values()
        });
    }

    function permissionFileIds(uint256 permissionId) external view returns (uint256[] memory) {
        return _permissions[permissionId].fileIds.values();
    }

    function filePermissions(uint256 fileId) external view returns (uint256[] memory) {
        return _filePermissionIds[fileId].values();
    }

    function filePermissionIds(uint256 fileId) external view returns (uint256[] memory) {
        return _filePermissionIds[fileId].values();
    }

    function userPermissionIdsValues(address userAddress) external view returns (uint256[] memory) {
        return _users[userAddress].permissionIds.values();
    }

    function userPermissionIdsLength(address userAddress) external view returns (uint256) {
        return _users[userAddress].permissionIds.length();
    }

    function userPermissionIdsAt(address userAddress, uint256 permissionIndex) external view returns (uint256) {
        return _users[userAddress].permissionIds.at(permissionIndex);
    }

    // ---------------------------------------------------------------- grants

    /// @notice Adds a permission signed (EIP-712 `Permission`) by the grantor; anyone may submit.
    function addPermission(PermissionInput calldata permissionInput, bytes calldata signature)
        external
        whenNotPaused
        returns (uint256)
    {
        bytes32 structHash = keccak256(
            abi.encode(
                PERMISSION_TYPEHASH,
                permissionInput.nonce,
                permissionInput.granteeId,
                keccak256(bytes(permissionInput.grant)),
                keccak256(abi.encodePacked(permissionInput.fileIds))
            )
        );
        address signer = ECDSA.recover(_hashTypedDataV4(structHash), signature);
        _useNonce(signer, permissionInput.nonce);
        _checkGrant(permissionInput.granteeId, permissionInput.grant);
        _checkFileOwners(signer, permissionInput.fileIds);
        return _addPermission(
            signer, permissionInput.nonce, permissionInput.granteeId, permissionInput.grant, permissionInput.fileIds
        );
    }

    /// @notice In one signed call: registers/trusts the server, registers the files (or adds the
    /// permissions to the signer's existing files), then grants the permission over them.
    function addServerFilesAndPermissions(
        ServerFilesAndPermissionInput calldata serverFilesAndPermissionInput,
        bytes calldata signature
    ) external whenNotPaused returns (uint256) {
        ServerFilesAndPermissionInput calldata input = serverFilesAndPermissionInput;
        if (input.schemaIds.length != input.fileUrls.length) {
            revert InvalidSchemaIdsLength(input.fileUrls.length, input.schemaIds.length);
        }
        if (input.filePermissions.length != input.fileUrls.length) {
            revert InvalidPermissionsLength(input.fileUrls.length, input.filePermissions.length);
        }
        address signer = ECDSA.recover(_hashTypedDataV4(_hashServerFilesAndPermission(input)), signature);
        _useNonce(signer, input.nonce);
        _checkGrant(input.granteeId, input.grant);

        dataPortabilityServers.addAndTrustServerByManager(
            signer,
            IDataPortabilityServers.AddServerInput({
                serverAddress: input.serverAddress,
                publicKey: input.serverPublicKey,
                serverUrl: input.serverUrl
            })
        );

        uint256[] memory fileIds = new uint256[](input.fileUrls.length);
        for (uint256 i = 0; i < input.fileUrls.length; i++) {
            fileIds[i] = _addOrUpdateFile(signer, input.fileUrls[i], input.filePermissions[i], input.schemaIds[i]);
        }
        return _addPermission(signer, input.nonce, input.granteeId, input.grant, fileIds);
    }

    function revokePermission(uint256 permissionId) external whenNotPaused {
        _revokePermission(_msgSender(), permissionId);
    }

    function revokePermissionWithSignature(RevokePermissionInput calldata revokePermissionInput, bytes calldata signature)
        external
        whenNotPaused
    {
        bytes32 structHash = keccak256(
            abi.encode(REVOKE_PERMISSION_TYPEHASH, revokePermissionInput.nonce, revokePermissionInput.permissionId)
        );
        address signer = ECDSA.recover(_hashTypedDataV4(structHash), signature);
        _useNonce(signer, revokePermissionInput.nonce);
        _revokePermission(signer, revokePermissionInput.permissionId);
    }

    // ---------------------------------------------------------------- internals

    function _useNonce(address signer, uint256 nonce) internal {
        User storage user = _users[signer];
        if (nonce != user.nonce) revert InvalidNonce(user.nonce, nonce);
        user.nonce = nonce + 1;
    }

    function _checkGrant(uint256 granteeId, string calldata grant) internal view {
        if (bytes(grant).length == 0) revert EmptyGrant();
        if (granteeId == 0 || granteeId > dataPortabilityGrantees.granteesCount()) revert GranteeNotFound();
    }

    function _checkFileOwners(address signer, uint256[] memory fileIds) internal view {
        for (uint256 i = 0; i < fileIds.length; i++) {
            address owner = dataRegistry.files(fileIds[i]).ownerAddress;
            if (owner != signer) revert NotFileOwner(owner, signer);
        }
    }

    function _addPermission(
        address signer,
        uint256 nonce,
        uint256 granteeId,
        string memory grant,
        uint256[] memory fileIds
    ) internal returns (uint256 permissionId) {
        permissionId = ++permissionsCount;
        PermissionStorage storage p = _permissions[permissionId];
        p.grantor = signer;
        p.nonce = nonce;
        p.granteeId = granteeId;
        p.grant = grant;
        p.startBlock = block.number;
        p.endBlock = type(uint256).max;
        for (uint256 i = 0; i < fileIds.length; i++) {
            p.fileIds.add(fileIds[i]);
            _filePermissionIds[fileIds[i]].add(permissionId);
        }
        _users[signer].permissionIds.add(permissionId);
        dataPortabilityGrantees.addPermissionToGrantee(granteeId, permissionId);

        emit PermissionAdded(permissionId, signer, granteeId, grant, fileIds);
    }

    function _addOrUpdateFile(
        address signer,
        string calldata url,
        IDataRegistry.Permission[] calldata keys,
        uint256 schemaId
    ) internal returns (uint256 fileId) {
        fileId = dataRegistry.fileIdByUrl(url);
        if (fileId == 0) {
            return dataRegistry.addFileWithPermissionsAndSchema(url, signer, keys, schemaId);
        }
        address owner = dataRegistry.files(fileId).ownerAddress;
        if (owner != signer) revert NotFileOwner(owner, signer);
        dataRegistry.addFilePermissionsAndSchema(fileId, keys, schemaId);
    }

    function _revokePermission(address requestor, uint256 permissionId) internal {
        PermissionStorage storage p = _permissions[permissionId];
        if (p.grantor != requestor) revert NotPermissionGrantor(p.grantor, requestor);
        if (p.endBlock <= block.number) revert InactivePermission(permissionId);
        p.endBlock = block.number;
        // As Vana's contract: a revoked permission leaves the grantor's and the grantee's sets.
        if (!_users[requestor].permissionIds.remove(permissionId)) revert InactivePermission(permissionId);
        dataPortabilityGrantees.removePermissionFromGrantee(p.granteeId, permissionId);
        emit PermissionRevoked(permissionId);
    }

    function _hashServerFilesAndPermission(ServerFilesAndPermissionInput calldata input)
        internal
        pure
        returns (bytes32)
    {
        bytes memory head = abi.encode(
            SERVER_FILES_AND_PERMISSION_TYPEHASH,
            input.nonce,
            input.granteeId,
            keccak256(bytes(input.grant)),
            _hashStrings(input.fileUrls),
            keccak256(abi.encodePacked(input.schemaIds))
        );
        bytes memory tail = abi.encode(
            input.serverAddress,
            keccak256(bytes(input.serverUrl)),
            keccak256(bytes(input.serverPublicKey)),
            _hashPermissionMatrix(input.filePermissions)
        );
        return keccak256(bytes.concat(head, tail));
    }

    function _hashStrings(string[] calldata values) internal pure returns (bytes32) {
        bytes32[] memory hashes = new bytes32[](values.length);
        for (uint256 i = 0; i < values.length; i++) {
            hashes[i] = keccak256(bytes(values[i]));
        }
        return keccak256(abi.encodePacked(hashes));
    }

    function _hashPermissionMatrix(IDataRegistry.Permission[][] calldata matrix) internal pure returns (bytes32) {
        bytes32[] memory rows = new bytes32[](matrix.length);
        for (uint256 i = 0; i < matrix.length; i++) {
            bytes32[] memory cells = new bytes32[](matrix[i].length);
            for (uint256 j = 0; j < matrix[i].length; j++) {
                cells[j] = keccak256(
                    abi.encode(FILE_PERMISSION_TYPEHASH, matrix[i][j].account, keccak256(bytes(matrix[i][j].key)))
                );
            }
            rows[i] = keccak256(abi.encodePacked(cells));
        }
        return keccak256(abi.encodePacked(rows));
    }
}
