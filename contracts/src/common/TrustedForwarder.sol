// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ContextUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/ContextUpgradeable.sol";

/// @notice ERC-2771 context whose forwarder is a storage variable (as in Vana's contracts,
/// where `_trustedForwarder` is the first variable of each storage layout). With no
/// forwarder set (the twin's default) `_msgSender()` is `msg.sender`.
abstract contract TrustedForwarder is ContextUpgradeable {
    address internal _trustedForwarder;

    event TrustedForwarderUpdated(address trustedForwarder);

    function trustedForwarder() public view returns (address) {
        return _trustedForwarder;
    }

    function isTrustedForwarder(address forwarder) public view returns (bool) {
        return forwarder == _trustedForwarder;
    }

    function _msgSender() internal view virtual override returns (address sender) {
        if (msg.data.length >= 20 && msg.sender == _trustedForwarder) {
            return address(bytes20(msg.data[msg.data.length - 20:]));
        }
        return msg.sender;
    }

    function _msgData() internal view virtual override returns (bytes calldata) {
        if (msg.data.length >= 20 && msg.sender == _trustedForwarder) {
            return msg.data[:msg.data.length - 20];
        }
        return msg.data;
    }

    function _contextSuffixLength() internal view virtual override returns (uint256) {
        return 20;
    }
}
