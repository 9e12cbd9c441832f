// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Types of the DataLiquidityPool template (Vana `version() == 1` shapes).
interface IDataLiquidityPool {
    struct FileResponse {
        uint256 fileId;
        uint256 timestamp;
        uint256 proofIndex;
        uint256 rewardAmount;
    }

    struct ContributorInfoResponse {
        address contributorAddress;
        uint256 filesListCount;
    }
}
