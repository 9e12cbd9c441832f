// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable2StepUpgradeable} from "@openzeppelin/contracts-upgradeable/access/Ownable2StepUpgradeable.sol";
import {PausableUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/PausableUpgradeable.sol";
import {ReentrancyGuardUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/ReentrancyGuardUpgradeable.sol";
import {MulticallUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/MulticallUpgradeable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts-upgradeable/proxy/utils/UUPSUpgradeable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {IDataRegistry} from "./interfaces/IDataRegistry.sol";
import {ITeePool} from "./interfaces/ITeePool.sol";
import {IDataLiquidityPool} from "./interfaces/IDataLiquidityPool.sol";

/// @title DataLiquidityPool (template)
/// @notice Pays contributors an ERC-20 reward for a file whose proof was signed by a TEE of the
/// pool: the signed message is keccak256(abi.encodePacked(url, score, dlpId, metadata, proofUrl,
/// instruction)) as an eth_sign message, and the reward is fileRewardFactor * score / 1e18, drawn
/// from the budget funded with addRewardsForContributors (totalContributorsRewardAmount).
contract DataLiquidityPool is
    Ownable2StepUpgradeable,
    PausableUpgradeable,
    ReentrancyGuardUpgradeable,
    UUPSUpgradeable,
    MulticallUpgradeable,
    IDataLiquidityPool
{
    using SafeERC20 for IERC20;
    using EnumerableSet for EnumerableSet.UintSet;
    using EnumerableSet for EnumerableSet.AddressSet;

    struct InitParams {
        address ownerAddress;
        address tokenAddress;
        address dataRegistryAddress;
        address teePoolAddress;
        string name;
        string publicKey;
        string proofInstruction;
        uint256 fileRewardFactor;
    }

    struct Contributor {
        EnumerableSet.UintSet fileIds;
    }

    string public name;
    IDataRegistry public dataRegistry;
    IERC20 public token;
    ITeePool public teePool;
    string public publicKey;
    string public proofInstruction;
    uint256 public fileRewardFactor;
    uint256 public totalContributorsRewardAmount;
    mapping(uint256 fileId => FileResponse) internal _files;
    EnumerableSet.UintSet internal _filesList;
    EnumerableSet.AddressSet internal _contributors;
    mapping(address contributorAddress => Contributor) internal _contributorInfo;

    error FileAlreadyAdded();
    error InvalidScore();
    error InvalidProof();
    error InvalidAttestator();

    event RewardRequested(
        address indexed contributorAddress, uint256 indexed fileId, uint256 indexed proofIndex, uint256 rewardAmount
    );
    event FileRewardFactorUpdated(uint256 newFileRewardFactor);
    event ProofInstructionUpdated(string newProofInstruction);
    event PublicKeyUpdated(string newPublicKey);
    event TeePoolUpdated(address newTeePool);

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        _disableInitializers();
    }

    function initialize(InitParams memory params) external initializer {
        __Ownable_init(params.ownerAddress);
        __Pausable_init();
        __ReentrancyGuard_init();
        name = params.name;
        dataRegistry = IDataRegistry(params.dataRegistryAddress);
        token = IERC20(params.tokenAddress);
        teePool = ITeePool(params.teePoolAddress);
        publicKey = params.publicKey;
        proofInstruction = params.proofInstruction;
        fileRewardFactor = params.fileRewardFactor;
    }

    function version() external pure returns (uint256) {
        return 1;
    }

    function _authorizeUpgrade(address) internal override onlyOwner {}

    // ---------------------------------------------------------------- views

    function files(uint256 fileId) external view returns (FileResponse memory) {
        return _files[fileId];
    }

    function filesListCount() external view returns (uint256) {
        return _filesList.length();
    }

    function filesListAt(uint256 index) external view returns (uint256) {
        return _filesList.at(index);
    }

    function contributorsCount() external view returns (uint256) {
        return _contributors.length();
    }

    function contributors(uint256 index) external view returns (ContributorInfoResponse memory) {
        return contributorInfo(_contributors.at(index));
    }

    function contributorInfo(address contributorAddress) public view returns (ContributorInfoResponse memory) {
        return ContributorInfoResponse({
            contributorAddress: contributorAddress,
            filesListCount: _contributorInfo[contributorAddress].fileIds.length()
        });
    }

    function contributorFiles(address contributorAddress, uint256 index) external view returns (FileResponse memory) {
        return _files[_contributorInfo[contributorAddress].fileIds.at(index)];
    }

    // ---------------------------------------------------------------- admin

    function pause() external onlyOwner {
        _pause();
    }

    function unpause() external onlyOwner {
        _unpause();
    }

    function updateFileRewardFactor(uint256 newFileRewardFactor) external onlyOwner {
        fileRewardFactor = newFileRewardFactor;
        emit FileRewardFactorUpdated(newFileRewardFactor);
    }

    function updateProofInstruction(string calldata newProofInstruction) external onlyOwner {
        proofInstruction = newProofInstruction;
        emit ProofInstructionUpdated(newProofInstruction);
    }

    function updatePublicKey(string calldata newPublicKey) external onlyOwner {
        publicKey = newPublicKey;
        emit PublicKeyUpdated(newPublicKey);
    }

    function updateTeePool(address newTeePool) external onlyOwner {
        teePool = ITeePool(newTeePool);
        emit TeePoolUpdated(newTeePool);
    }

    // ---------------------------------------------------------------- rewards

    /// @notice Moves `contributorsRewardAmount` tokens from the caller into the reward pool.
    function addRewardsForContributors(uint256 contributorsRewardAmount) external nonReentrant {
        token.safeTransferFrom(msg.sender, address(this), contributorsRewardAmount);
        totalContributorsRewardAmount += contributorsRewardAmount;
    }

    function requestReward(uint256 registryFileId, uint256 proofIndex) external whenNotPaused nonReentrant {
        IDataRegistry.FileResponse memory file = dataRegistry.files(registryFileId);
        IDataRegistry.Proof memory fileProof = dataRegistry.fileProofs(registryFileId, proofIndex);

        if (keccak256(bytes(fileProof.data.instruction)) != keccak256(bytes(proofInstruction))) {
            revert InvalidProof();
        }
        if (_files[registryFileId].timestamp != 0) revert FileAlreadyAdded();
        if (fileProof.data.score == 0 || fileProof.data.score > 1e18) revert InvalidScore();

        bytes32 messageHash = keccak256(
            abi.encodePacked(
                file.url,
                fileProof.data.score,
                fileProof.data.dlpId,
                fileProof.data.metadata,
                fileProof.data.proofUrl,
                fileProof.data.instruction
            )
        );
        address signer = ECDSA.recover(MessageHashUtils.toEthSignedMessageHash(messageHash), fileProof.signature);
        if (!teePool.isTee(signer)) revert InvalidAttestator();

        uint256 reward = (fileRewardFactor * fileProof.data.score) / 1e18;
        _files[registryFileId] = FileResponse({
            fileId: registryFileId,
            timestamp: block.timestamp,
            proofIndex: proofIndex,
            rewardAmount: reward
        });
        _filesList.add(registryFileId);
        _contributors.add(file.ownerAddress);
        _contributorInfo[file.ownerAddress].fileIds.add(registryFileId);

        // As Vana's DLP template: pay, then draw from the funded budget. Once the budget is spent
        // the transfer (the pool holds no more than the budget) or the checked subtraction reverts.
        token.safeTransfer(file.ownerAddress, reward);
        totalContributorsRewardAmount -= reward;
        emit RewardRequested(file.ownerAddress, registryFileId, proofIndex, reward);
    }
}
