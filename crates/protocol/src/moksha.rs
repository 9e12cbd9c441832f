//! Where the Vana contracts live on Moksha (chain 14800), as the published
//! SDK's address table (`dist/config/addresses.js`) lists them. Apps cannot
//! give the SDK other addresses, so the twin places every contract the SDK
//! knows at these.

use alloy::primitives::{Address, address};

/// Moksha's chain id (the twin's default too).
pub const CHAIN_ID: u64 = 14800;

/// The SDK's Moksha address of each contract the twin deploys, by contract name.
pub const ADDRESSES: [(&str, Address); 6] = [
    (
        "DataRegistry",
        address!("0x8C8788f98385F6ba1adD4234e551ABba0f82Cb7C"),
    ),
    (
        "DataPortabilityPermissions",
        address!("0xD54523048AdD05b4d734aFaE7C68324Ebb7373eF"),
    ),
    (
        "DataPortabilityServers",
        address!("0x1483B1F634DBA75AeaE60da7f01A679aabd5ee2c"),
    ),
    (
        "DataPortabilityGrantees",
        address!("0x8325C0A0948483EdA023A1A2Fd895e62C5131234"),
    ),
    (
        "TeePoolPhala",
        address!("0xE8EC6BD73b23Ad40E6B9a6f4bD343FAc411bD99A"),
    ),
    (
        "DataRefinerRegistry",
        address!("0x93c3EF89369fDcf08Be159D9DeF0F18AB6Be008c"),
    ),
];

/// The Moksha address of `name`, if the SDK knows the contract.
pub fn address_of(name: &str) -> Option<Address> {
    ADDRESSES.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table agrees with the SDK's own, when the pinned package is installed.
    #[test]
    fn the_table_matches_the_sdks_addresses_js() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tools/node_modules/@opendatalabs/vana-sdk/dist/config/addresses.js"
        );
        let Ok(js) = std::fs::read_to_string(path) else {
            eprintln!("skipped: {path} is not installed (npm ci --prefix tools)");
            return;
        };
        for (name, addr) in ADDRESSES {
            let block = js
                .split(&format!("\n  {name}: {{"))
                .nth(1)
                .unwrap_or_else(|| panic!("{name} is not in addresses.js"));
            let line = block
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{CHAIN_ID}:")))
                .unwrap_or_else(|| panic!("{name} has no {CHAIN_ID} address"));
            let listed: Address = line
                .split('"')
                .nth(1)
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("unreadable line {line:?}"));
            assert_eq!(listed, addr, "{name}");
        }
        assert_eq!(address_of("DataRegistry"), Some(ADDRESSES[0].1));
        assert_eq!(address_of("RewardToken"), None);
    }
}
