// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlUpgradeable} from "@openzeppelin/contracts-upgradeable/access/AccessControlUpgradeable.sol";
import {PausableUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/PausableUpgradeable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts-upgradeable/proxy/utils/UUPSUpgradeable.sol";
import {ContextUpgradeable} from "@openzeppelin/contracts-upgradeable/utils/ContextUpgradeable.sol";
import {TrustedForwarder} from "./TrustedForwarder.sol";

/// @notice The base every role-based Vana contract here shares: AccessControl, Pausable, UUPS
/// (upgrades need DEFAULT_ADMIN_ROLE), a storage ERC-2771 forwarder, and MAINTAINER_ROLE admin.
abstract contract VanaUpgradeable is AccessControlUpgradeable, PausableUpgradeable, UUPSUpgradeable, TrustedForwarder {
    bytes32 public constant MAINTAINER_ROLE = keccak256("MAINTAINER_ROLE");

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        _disableInitializers();
    }

    function __VanaUpgradeable_init(address trustedForwarderAddress, address ownerAddress) internal onlyInitializing {
        __AccessControl_init();
        __Pausable_init();
        _trustedForwarder = trustedForwarderAddress;
        _grantRole(DEFAULT_ADMIN_ROLE, ownerAddress);
        _grantRole(MAINTAINER_ROLE, ownerAddress);
    }

    function _authorizeUpgrade(address) internal virtual override onlyRole(DEFAULT_ADMIN_ROLE) {}

    function pause() external onlyRole(MAINTAINER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(MAINTAINER_ROLE) {
        _unpause();
    }

    function setRoleAdmin(bytes32 role, bytes32 adminRole) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setRoleAdmin(role, adminRole);
    }

    function updateTrustedForwarder(address trustedForwarderAddress) external onlyRole(MAINTAINER_ROLE) {
        _trustedForwarder = trustedForwarderAddress;
        emit TrustedForwarderUpdated(trustedForwarderAddress);
    }

    function _msgSender() internal view virtual override(ContextUpgradeable, TrustedForwarder) returns (address) {
        return TrustedForwarder._msgSender();
    }

    function _msgData() internal view virtual override(ContextUpgradeable, TrustedForwarder) returns (bytes calldata) {
        return TrustedForwarder._msgData();
    }

    function _contextSuffixLength()
        internal
        view
        virtual
        override(ContextUpgradeable, TrustedForwarder)
        returns (uint256)
    {
        return TrustedForwarder._contextSuffixLength();
    }
}
