// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Types of the TEE pool (Vana TeePool / TeePoolPhala `version() == 1` shapes).
interface ITeePool {
    enum TeeStatus {
        None,
        Active,
        Removed
    }

    enum JobStatus {
        None,
        Submitted,
        Completed,
        Canceled
    }

    struct Job {
        uint256 fileId;
        uint256 bidAmount;
        JobStatus status;
        uint256 addedTimestamp;
        address ownerAddress;
        address teeAddress;
    }

    struct TeeInfo {
        address teeAddress;
        string url;
        TeeStatus status;
        uint256 amount;
        uint256 withdrawnAmount;
        uint256 jobsCount;
        string publicKey;
    }

    function isTee(address teeAddress) external view returns (bool);
}
