//! The JSON-RPC client every part of vana-load uses to reach a node.
//!
//! It is alloy's HTTP client with one retry rule, [`StaleHead`]: a read at
//! `latest` that a node answers with "block height is H but requested was
//! H-1" is asked again. Anvil without history (`--prune-history`, which load
//! runs need; see the twin's `chain.prune_history`) resolves `latest` to a
//! number first and fetches that block's state second; a block sealed in
//! between leaves it asking for a state it no longer keeps. The request was
//! fine, the answer is a race inside the node, so the client asks again
//! rather than failing a journey. Nothing else is retried: every other error
//! reaches the caller as it came, so a load test still sees it.

use std::time::Duration;

use alloy::providers::RootProvider;
use alloy::rpc::client::{ClientBuilder, RpcClient};
use alloy::transports::TransportError;
use alloy::transports::layers::{RetryBackoffLayer, RetryPolicy};

/// Attempts after the first for a [`StaleHead`] answer.
pub const STALE_HEAD_RETRIES: u32 = 3;
/// Milliseconds before the first retry (alloy's layer backs off from there).
pub const STALE_HEAD_BACKOFF_MS: u64 = 5;

/// An HTTP JSON-RPC client for `url` that retries [`StaleHead`] answers.
pub fn client(url: alloy::transports::http::reqwest::Url) -> RpcClient {
    ClientBuilder::default()
        .layer(RetryBackoffLayer::new_with_policy(
            STALE_HEAD_RETRIES,
            STALE_HEAD_BACKOFF_MS,
            // No compute-unit budget: this layer is not a rate limiter.
            u64::MAX,
            StaleHead,
        ))
        .http(url)
}

/// A provider over [`client`], without fillers or signer.
pub fn provider(url: alloy::transports::http::reqwest::Url) -> RootProvider {
    RootProvider::new(client(url))
}

/// The retry rule: an `BlockOutOfRange` answer for a block at most two
/// behind the node's head (the `latest` race described in the module docs).
/// Reads of genuinely old blocks are not retried.
#[derive(Debug, Clone, Copy, Default)]
pub struct StaleHead;

impl RetryPolicy for StaleHead {
    fn should_retry(&self, error: &TransportError) -> bool {
        error
            .as_error_resp()
            .is_some_and(|resp| is_stale_head(&resp.message))
    }

    fn backoff_hint(&self, _error: &TransportError) -> Option<Duration> {
        None
    }
}

/// Whether a node's error message is anvil's `BlockOutOfRangeError` for a
/// block at most two behind its head.
pub fn is_stale_head(message: &str) -> bool {
    // "BlockOutOfRangeError: block height is 460 but requested was 459"
    let Some(rest) = message.split("block height is ").nth(1) else {
        return false;
    };
    let mut parts = rest.split(" but requested was ");
    let height = parts.next().and_then(|h| h.trim().parse::<u64>().ok());
    let requested = parts
        .next()
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|r| r.parse::<u64>().ok());
    match (height, requested) {
        (Some(h), Some(r)) => r < h && h - r <= 2,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_head_is_only_a_block_or_two_behind() {
        let msg = |h: u64, r: u64| {
            format!("BlockOutOfRangeError: block height is {h} but requested was {r}")
        };
        assert!(is_stale_head(&msg(460, 459)));
        assert!(is_stale_head(&msg(460, 458)));
        assert!(
            !is_stale_head(&msg(460, 450)),
            "an old block stays an error"
        );
        assert!(
            !is_stale_head(&msg(460, 461)),
            "a future block stays an error"
        );
        assert!(!is_stale_head(&msg(460, 460)));
        assert!(!is_stale_head("execution reverted"));
        assert!(!is_stale_head("block height is x but requested was 1"));
    }
}
