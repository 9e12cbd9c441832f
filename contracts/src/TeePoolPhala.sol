// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {ReentrancyGuardUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/ReentrancyGuardUpgradeable.sol";
import {MulticallUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/MulticallUpgradeable.sol";
import {ContextUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/ContextUpgradeable.sol";
import {VanaUpgradeable} from "./common/VanaUpgradeable.sol";
import {IDataRegistry} from "./interfaces/IDataRegistry.sol";
import {ITeePool} from "./interfaces/ITeePool.sol";

/// @title TeePoolPhala
/// @notice Contribution-proof jobs: a user pays `teeFee` (escrowed as the job's bid), the job is
/// assigned to `activeTeeList[jobId % activeCount]`, and only that TEE may add the proof, which
/// is written to the DataRegistry and credits the bid to the TEE (withdrawn with `claim`).
contract TeePoolPhala is VanaUpgradeable, ReentrancyGuardUpgradeable, MulticallUpgradeable, ITeePool {
    using EnumerableSet for EnumerableSet.AddressSet;
    using EnumerableSet for EnumerableSet.UintSet;

    struct Tee {
        string url;
        TeeStatus status;
        uint256 amount;
        uint256 withdrawnAmount;
        EnumerableSet.UintSet jobIdsList;
        string publicKey;
    }

    IDataRegistry public dataRegistry;
    uint256 public cancelDelay;
    uint256 public teeFee;
    uint256 public jobsCount;
    mapping(uint256 jobId => Job) internal _jobs;
    mapping(address teeAddress => Tee) internal _tees;
    EnumerableSet.AddressSet internal _teeList;
    EnumerableSet.AddressSet internal _activeTeeList;
    mapping(uint256 fileId => EnumerableSet.UintSet) internal _fileJobsIds;

    error TeeAlreadyAdded();
    error TeeNotActive();
    error JobCompleted();
    error InvalidJobStatus();
    error InvalidJobTee();
    error NothingToClaim();
    error InsufficientFee();
    error NoActiveTee();
    error NotJobOwner();
    error CancelDelayNotPassed();
    error TransferFailed();

    event TeeAdded(address indexed teeAddress);
    event TeeRemoved(address indexed teeAddress);
    event JobSubmitted(uint256 indexed jobId, uint256 indexed fileId, address teeAddress, uint256 bidAmount);
    event JobCanceled(uint256 indexed jobId);
    event ProofAdded(address indexed attestator, uint256 indexed jobId, uint256 indexed fileId);
    event Claimed(address indexed teeAddress, uint256 amount);

    function initialize(
        address trustedForwarderAddress,
        address ownerAddress,
        address dataRegistryAddress,
        uint256 initialCancelDelay
    ) external initializer {
        __VanaUpgradeable_init(trustedForwarderAddress, ownerAddress);
        __ReentrancyGuard_init();
        dataRegistry = IDataRegistry(dataRegistryAddress);
        cancelDelay = initialCancelDelay;
    }

    function version() external pure returns (uint256) {
        return 1;
    }

    // ---------------------------------------------------------------- views

    function jobs(uint256 jobId) external view returns (Job memory) {
        return _jobs[jobId];
    }

    function tees(address teeAddress) public view returns (TeeInfo memory) {
        Tee storage tee = _tees[teeAddress];
        return TeeInfo({
            teeAddress: teeAddress,
            url: tee.url,
            status: tee.status,
            amount: tee.amount,
            withdrawnAmount: tee.withdrawnAmount,
            jobsCount: tee.jobIdsList.length(),
            publicKey: tee.publicKey
        });
    }

    function isTee(address teeAddress) external view override returns (bool) {
        return _tees[teeAddress].status == TeeStatus.Active;
    }

    function teesCount() external view returns (uint256) {
        return _teeList.length();
    }

    function teeList() external view returns (address[] memory) {
        return _teeList.values();
    }

    function teeListAt(uint256 index) external view returns (TeeInfo memory) {
        return tees(_teeList.at(index));
    }

    function activeTeesCount() external view returns (uint256) {
        return _activeTeeList.length();
    }

    function activeTeeList() external view returns (address[] memory) {
        return _activeTeeList.values();
    }

    function activeTeeListAt(uint256 index) external view returns (TeeInfo memory) {
        return tees(_activeTeeList.at(index));
    }

    function fileJobIds(uint256 fileId) external view returns (uint256[] memory) {
        return _fileJobsIds[fileId].values();
    }

    function teeJobIdsPaginated(address teeAddress, uint256 start, uint256 limit)
        external
        view
        returns (uint256[] memory page)
    {
        EnumerableSet.UintSet storage ids = _tees[teeAddress].jobIdsList;
        uint256 total = ids.length();
        uint256 end = start + limit > total ? total : start + limit;
        if (start >= end) return new uint256[](0);
        page = new uint256[](end - start);
        for (uint256 i = start; i < end; i++) {
            page[i - start] = ids.at(i);
        }
    }

    // ---------------------------------------------------------------- admin

    function updateDataRegistry(address newDataRegistry) external onlyRole(MAINTAINER_ROLE) {
        dataRegistry = IDataRegistry(newDataRegistry);
    }

    function updateTeeFee(uint256 newTeeFee) external onlyRole(MAINTAINER_ROLE) {
        teeFee = newTeeFee;
    }

    function updateCancelDelay(uint256 newCancelDelay) external onlyRole(MAINTAINER_ROLE) {
        cancelDelay = newCancelDelay;
    }

    /// @notice Adds (or re-activates a removed) TEE.
    function addTee(address teeAddress, string calldata url, string calldata publicKey)
        external
        onlyRole(MAINTAINER_ROLE)
    {
        Tee storage tee = _tees[teeAddress];
        if (tee.status == TeeStatus.Active) revert TeeAlreadyAdded();
        _teeList.add(teeAddress);
        _activeTeeList.add(teeAddress);
        tee.url = url;
        tee.status = TeeStatus.Active;
        tee.publicKey = publicKey;
        emit TeeAdded(teeAddress);
    }

    /// @notice Twin extension (not in Vana's ABI): change an active TEE's URL and public key,
    /// e.g. when the TEE service's port is only known after the deployment.
    function updateTee(address teeAddress, string calldata url, string calldata publicKey)
        external
        onlyRole(MAINTAINER_ROLE)
    {
        Tee storage tee = _tees[teeAddress];
        if (tee.status != TeeStatus.Active) revert TeeNotActive();
        tee.url = url;
        tee.publicKey = publicKey;
    }

    function removeTee(address teeAddress) external onlyRole(MAINTAINER_ROLE) {
        Tee storage tee = _tees[teeAddress];
        if (tee.status != TeeStatus.Active) revert TeeNotActive();
        tee.status = TeeStatus.Removed;
        _activeTeeList.remove(teeAddress);
        emit TeeRemoved(teeAddress);
    }

    // ---------------------------------------------------------------- jobs

    function requestContributionProof(uint256 fileId) public payable whenNotPaused {
        if (msg.value < teeFee) revert InsufficientFee();
        uint256 activeCount = _activeTeeList.length();
        if (activeCount == 0) revert NoActiveTee();

        uint256 jobId = ++jobsCount;
        address teeAddress = _activeTeeList.at(jobId % activeCount);
        _jobs[jobId] = Job({
            fileId: fileId,
            bidAmount: msg.value,
            status: JobStatus.Submitted,
            addedTimestamp: block.timestamp,
            ownerAddress: _msgSender(),
            teeAddress: teeAddress
        });
        _fileJobsIds[fileId].add(jobId);
        _tees[teeAddress].jobIdsList.add(jobId);

        emit JobSubmitted(jobId, fileId, teeAddress, msg.value);
    }

    /// @notice Alias of `requestContributionProof`.
    function submitJob(uint256 fileId) external payable {
        requestContributionProof(fileId);
    }

    /// @notice Adds the proof of a job; only the active TEE the job is assigned to may call it.
    function addProof(uint256 jobId, IDataRegistry.Proof memory proof) external payable whenNotPaused {
        if (_tees[msg.sender].status != TeeStatus.Active) revert TeeNotActive();
        Job storage job = _jobs[jobId];
        if (job.status != JobStatus.Submitted) revert InvalidJobStatus();
        if (job.teeAddress != msg.sender) revert InvalidJobTee();

        dataRegistry.addProof(job.fileId, proof);

        job.status = JobStatus.Completed;
        Tee storage tee = _tees[msg.sender];
        tee.amount += job.bidAmount;
        tee.jobIdsList.remove(jobId);

        emit ProofAdded(msg.sender, jobId, job.fileId);
    }

    function cancelJob(uint256 jobId) external nonReentrant whenNotPaused {
        Job storage job = _jobs[jobId];
        if (job.ownerAddress != _msgSender()) revert NotJobOwner();
        if (job.status == JobStatus.Completed) revert JobCompleted();
        if (job.status != JobStatus.Submitted) revert InvalidJobStatus();
        if (block.timestamp < job.addedTimestamp + cancelDelay) revert CancelDelayNotPassed();

        job.status = JobStatus.Canceled;
        _tees[job.teeAddress].jobIdsList.remove(jobId);
        emit JobCanceled(jobId);

        if (job.bidAmount > 0) {
            (bool ok,) = payable(job.ownerAddress).call{value: job.bidAmount}("");
            if (!ok) revert TransferFailed();
        }
    }

    function claim() external nonReentrant whenNotPaused {
        Tee storage tee = _tees[msg.sender];
        uint256 amount = tee.amount - tee.withdrawnAmount;
        if (amount == 0) revert NothingToClaim();
        tee.withdrawnAmount = tee.amount;
        (bool ok,) = payable(msg.sender).call{value: amount}("");
        if (!ok) revert TransferFailed();
        emit Claimed(msg.sender, amount);
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
