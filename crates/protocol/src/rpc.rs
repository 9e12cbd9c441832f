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
//!
//! Every call has a deadline ([`DEFAULT_TIMEOUT`], or the one given to
//! [`client_with_timeout`]): a node that accepts a connection and never
//! answers fails the call with a timeout instead of freezing its caller (the
//! twin's indexer, TEE and senders, or a virtual user).
//!
//! [`counted_client`] adds [`CountLayer`]: every JSON-RPC call, as the caller
//! sees it (after the stale-head retries), is counted by [`RpcOutcome`] in an
//! [`RpcStats`] the caller keeps, so a run can report its RPC success rate.
//! A batch counts each of its calls. The layer is written here because alloy
//! has none that counts; it is a plain tower layer over alloy's transport.
//!
//! [`History`] remembers that a node keeps no past states, so reads meant for
//! a past block stop asking it for blocks it will refuse.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use alloy::providers::RootProvider;
use alloy::rpc::client::{ClientBuilder, RpcClient};
use alloy::rpc::json_rpc::{RequestPacket, ResponsePacket};
use alloy::transports::layers::{RetryBackoffLayer, RetryPolicy};
use alloy::transports::{RpcError, TransportError, TransportErrorKind, TransportFut};
use tower::{Layer, Service};

mod history;
pub use history::{History, is_block_out_of_range};

/// Attempts after the first for a [`StaleHead`] answer.
pub const STALE_HEAD_RETRIES: u32 = 3;
/// Milliseconds before the first retry (alloy's layer backs off from there).
pub const STALE_HEAD_BACKOFF_MS: u64 = 5;

/// How long one JSON-RPC exchange may take before it fails as a timeout.
/// Generous: an automining anvil under load answers a send only once it has
/// mined the block.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long opening a connection to the node may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP JSON-RPC client for `url` that retries [`StaleHead`] answers,
/// with the [`DEFAULT_TIMEOUT`] on every call.
pub fn client(url: alloy::transports::http::reqwest::Url) -> RpcClient {
    client_with_timeout(url, DEFAULT_TIMEOUT)
}

/// [`client`] with its own per-call timeout.
pub fn client_with_timeout(
    url: alloy::transports::http::reqwest::Url,
    timeout: Duration,
) -> RpcClient {
    ClientBuilder::default()
        .layer(stale_head_retry())
        .http_with_client(http_client(timeout), url)
}

/// The HTTP client under every JSON-RPC client: bounded connect and call time.
pub fn http_client(timeout: Duration) -> alloy::transports::http::reqwest::Client {
    alloy::transports::http::reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .build()
        .expect("the TLS backend initialises")
}

fn stale_head_retry() -> RetryBackoffLayer<StaleHead> {
    RetryBackoffLayer::new_with_policy(
        STALE_HEAD_RETRIES,
        STALE_HEAD_BACKOFF_MS,
        // No compute-unit budget: this layer is not a rate limiter.
        u64::MAX,
        StaleHead,
    )
}

/// A provider over [`client`], without fillers or signer.
pub fn provider(url: alloy::transports::http::reqwest::Url) -> RootProvider {
    RootProvider::new(client(url))
}

/// A provider over [`client_with_timeout`].
pub fn provider_with_timeout(
    url: alloy::transports::http::reqwest::Url,
    timeout: Duration,
) -> RootProvider {
    RootProvider::new(client_with_timeout(url, timeout))
}

/// [`client`] with every call counted in `stats` (see [`CountLayer`]).
pub fn counted_client(url: alloy::transports::http::reqwest::Url, stats: &RpcStats) -> RpcClient {
    ClientBuilder::default()
        // Outermost: a call is counted once, as its caller sees it.
        .layer(stats.layer())
        .layer(stale_head_retry())
        .http_with_client(http_client(DEFAULT_TIMEOUT), url)
}

/// A provider over [`counted_client`].
pub fn counted_provider(
    url: alloy::transports::http::reqwest::Url,
    stats: &RpcStats,
) -> RootProvider {
    RootProvider::new(counted_client(url, stats))
}

/// How one JSON-RPC call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcOutcome {
    /// The node answered with a result.
    Ok,
    /// The node answered with a JSON-RPC error (a revert, a refused
    /// transaction), or the transport failed (connection refused, an HTTP
    /// error status, an unreadable body).
    Error,
    /// No answer in time: the HTTP client timed out, or the caller stopped
    /// waiting (its deadline passed) and dropped the call.
    Timeout,
}

/// Calls counted by outcome since the [`RpcStats`] was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RpcTally {
    pub ok: u64,
    pub error: u64,
    pub timeout: u64,
}

impl RpcTally {
    pub fn total(&self) -> u64 {
        self.ok + self.error + self.timeout
    }

    /// `ok ÷ total`, `None` before the first call.
    pub fn success_rate(&self) -> Option<f64> {
        let n = self.total();
        (n > 0).then(|| self.ok as f64 / n as f64)
    }
}

/// Counters of JSON-RPC calls by outcome; clones share them.
#[derive(Debug, Clone, Default)]
pub struct RpcStats(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    ok: AtomicU64,
    error: AtomicU64,
    timeout: AtomicU64,
}

impl RpcStats {
    pub fn new() -> RpcStats {
        RpcStats::default()
    }

    /// The counts so far.
    pub fn tally(&self) -> RpcTally {
        RpcTally {
            ok: self.0.ok.load(Ordering::Relaxed),
            error: self.0.error.load(Ordering::Relaxed),
            timeout: self.0.timeout.load(Ordering::Relaxed),
        }
    }

    /// Counts `n` calls that ended with `outcome`.
    pub fn add(&self, outcome: RpcOutcome, n: u64) {
        let c = match outcome {
            RpcOutcome::Ok => &self.0.ok,
            RpcOutcome::Error => &self.0.error,
            RpcOutcome::Timeout => &self.0.timeout,
        };
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// A transport layer that counts into these stats.
    pub fn layer(&self) -> CountLayer {
        CountLayer {
            stats: self.clone(),
        }
    }
}

/// A tower layer counting every call that passes through by [`RpcOutcome`].
#[derive(Debug, Clone)]
pub struct CountLayer {
    stats: RpcStats,
}

impl<S> Layer<S> for CountLayer {
    type Service = CountService<S>;

    fn layer(&self, inner: S) -> CountService<S> {
        CountService {
            inner,
            stats: self.stats.clone(),
        }
    }
}

/// The service of [`CountLayer`].
#[derive(Debug, Clone)]
pub struct CountService<S> {
    inner: S,
    stats: RpcStats,
}

impl<S> Service<RequestPacket> for CountService<S>
where
    S: Service<
            RequestPacket,
            Response = ResponsePacket,
            Error = TransportError,
            Future = TransportFut<'static>,
        > + Send
        + 'static,
{
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: RequestPacket) -> TransportFut<'static> {
        let mut pending = Pending {
            stats: self.stats.clone(),
            calls: request.len() as u64,
        };
        let fut = self.inner.call(request);
        Box::pin(async move {
            let result = fut.await;
            pending.settle(&result);
            result
        })
    }
}

/// Calls sent and not yet answered: counted as [`RpcOutcome::Timeout`] if
/// dropped unanswered.
struct Pending {
    stats: RpcStats,
    calls: u64,
}

impl Pending {
    fn settle(&mut self, result: &Result<ResponsePacket, TransportError>) {
        let calls = std::mem::take(&mut self.calls);
        match result {
            Ok(ResponsePacket::Single(r)) => self.stats.add(ok_or_error(r.is_success()), 1),
            Ok(ResponsePacket::Batch(rs)) => {
                let ok = rs.iter().filter(|r| r.is_success()).count() as u64;
                self.stats.add(RpcOutcome::Ok, ok);
                // Calls of the batch the node did not answer count as errors too.
                self.stats.add(RpcOutcome::Error, calls.saturating_sub(ok));
            }
            Err(e) if is_timeout(e) => self.stats.add(RpcOutcome::Timeout, calls),
            Err(_) => self.stats.add(RpcOutcome::Error, calls),
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.calls > 0 {
            self.stats.add(RpcOutcome::Timeout, self.calls);
        }
    }
}

fn ok_or_error(ok: bool) -> RpcOutcome {
    if ok {
        RpcOutcome::Ok
    } else {
        RpcOutcome::Error
    }
}

/// Whether a transport error is the HTTP client's timeout.
fn is_timeout(e: &TransportError) -> bool {
    let RpcError::Transport(TransportErrorKind::Custom(inner)) = e else {
        return false;
    };
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(inner.as_ref());
    while let Some(err) = source {
        if let Some(r) = err.downcast_ref::<alloy::transports::http::reqwest::Error>() {
            return r.is_timeout();
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::TimedOut;
        }
        source = err.source();
    }
    false
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
    match out_of_range_blocks(message) {
        Some((h, r)) => r < h && h - r <= 2,
        None => false,
    }
}

/// The node's height and the requested block of a "block height is H but
/// requested was R" refusal, if the message is one.
pub(crate) fn out_of_range_blocks(message: &str) -> Option<(u64, u64)> {
    let rest = message.split("block height is ").nth(1)?;
    let mut parts = rest.split(" but requested was ");
    let height = parts.next()?.trim().parse::<u64>().ok()?;
    let requested = parts
        .next()?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse::<u64>()
        .ok()?;
    Some((height, requested))
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

    /// A node that accepts connections and never answers.
    async fn silent_node() -> (
        alloy::transports::http::reqwest::Url,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        (url, task)
    }

    #[tokio::test]
    async fn a_silent_node_fails_the_call_as_a_timeout() {
        use alloy::providers::Provider;
        let (url, task) = silent_node().await;
        let stats = RpcStats::new();
        let provider = RootProvider::<alloy::network::Ethereum>::new(
            ClientBuilder::default()
                .layer(stats.layer())
                .layer(stale_head_retry())
                .http_with_client(http_client(Duration::from_millis(300)), url.clone()),
        );
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(Duration::from_secs(10), provider.get_block_number())
            .await
            .expect("the client's own timeout ends the call");
        assert!(outcome.is_err(), "a silent node cannot answer");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(stats.tally().timeout, 1, "{:?}", stats.tally());

        task.abort();
    }
}
