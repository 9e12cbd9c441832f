// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IDataRefinerRegistry} from "./interfaces/IDataRegistry.sol";

/// @title DataRefinerRegistry (minimal)
/// @notice A documented simplification of Vana's schema registry: only schemas (no refiners,
/// no DLP ownership checks). The DataRegistry asks it whether a schema id > 0 exists.
contract DataRefinerRegistry is IDataRefinerRegistry {
    struct Schema {
        string name;
        string dialect;
        string definitionUrl;
    }

    uint256 public schemasCount;
    mapping(uint256 schemaId => Schema) internal _schemas;

    event SchemaAdded(uint256 indexed schemaId, string name, string dialect, string definitionUrl);

    function addSchema(string calldata name, string calldata dialect, string calldata definitionUrl)
        external
        returns (uint256 schemaId)
    {
        schemaId = ++schemasCount;
        _schemas[schemaId] = Schema(name, dialect, definitionUrl);
        emit SchemaAdded(schemaId, name, dialect, definitionUrl);
    }

    function schemas(uint256 schemaId) external view returns (Schema memory) {
        return _schemas[schemaId];
    }

    function isValidSchemaId(uint256 schemaId) external view override returns (bool) {
        return schemaId > 0 && schemaId <= schemasCount;
    }
}
