// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title BatchFunder
/// @notice Tops up many wallets to a target native balance in one transaction. Wallets already
/// at or above the target get nothing, so a repeated or resumed call is harmless (idempotent);
/// whatever is not needed is refunded to the sender.
contract BatchFunder {
    error InsufficientValue(uint256 needed, uint256 provided);
    error TransferFailed(address wallet);

    event ToppedUp(address indexed funder, uint256 walletsFunded, uint256 totalSent);

    /// @notice What `topUp(wallets, target)` would send in total, and to how many wallets.
    function shortfall(address[] calldata wallets, uint256 target)
        external
        view
        returns (uint256 total, uint256 count)
    {
        for (uint256 i = 0; i < wallets.length; i++) {
            uint256 balance = wallets[i].balance;
            if (balance < target) {
                total += target - balance;
                count++;
            }
        }
    }

    /// @notice Sends `target - balance` to each wallet below `target`; refunds the rest of
    /// `msg.value`. Reverts with `InsufficientValue` if `msg.value` does not cover the shortfall.
    function topUp(address[] calldata wallets, uint256 target) external payable {
        uint256 remaining = msg.value;
        uint256 funded;
        for (uint256 i = 0; i < wallets.length; i++) {
            uint256 balance = wallets[i].balance;
            if (balance >= target) continue;
            uint256 amount = target - balance;
            if (amount > remaining) revert InsufficientValue(msg.value - remaining + amount, msg.value);
            remaining -= amount;
            funded++;
            (bool ok,) = payable(wallets[i]).call{value: amount}("");
            if (!ok) revert TransferFailed(wallets[i]);
        }
        emit ToppedUp(msg.sender, funded, msg.value - remaining);
        if (remaining > 0) {
            (bool ok,) = payable(msg.sender).call{value: remaining}("");
            if (!ok) revert TransferFailed(msg.sender);
        }
    }
}
