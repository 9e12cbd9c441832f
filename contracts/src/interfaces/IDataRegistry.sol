// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Types and the cross-contract surface of the DataRegistry (Vana `version() == 2` shapes).
interface IDataRegistry {
    struct Permission {
        address account;
        string key;
    }

    struct ProofData {
        uint256 score;
        uint256 dlpId;
        string metadata;
        string proofUrl;
        string instruction;
    }

    struct Proof {
        bytes signature;
        ProofData data;
    }

    struct FileResponse {
        uint256 id;
        address ownerAddress;
        string url;
        uint256 schemaId;
        uint256 addedAtBlock;
    }

    function files(uint256 fileId) external view returns (FileResponse memory);
    function fileProofs(uint256 fileId, uint256 index) external view returns (Proof memory);
    function fileIdByUrl(string memory url) external view returns (uint256);
    function addProof(uint256 fileId, Proof memory proof) external;
    function addFileWithPermissionsAndSchema(
        string memory url,
        address ownerAddress,
        Permission[] memory permissions,
        uint256 schemaId
    ) external returns (uint256);
    function addFilePermissionsAndSchema(uint256 fileId, Permission[] memory permissions, uint256 schemaId) external;
}

/// @notice The one call the DataRegistry makes on the schema registry.
interface IDataRefinerRegistry {
    function isValidSchemaId(uint256 schemaId) external view returns (bool);
}
