//! The `index` step polls the subgraph like the SDK: `_meta` is cached and
//! shared, polled with backoff, and not asked again once it reaches the
//! block needed; the user's files are asked for only then.
//!
//! A fake subgraph on loopback starts indexing only after a delay; the
//! number of queries it sees is checked against the backoff schedule.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use axum::Json;
use axum::Router;
use axum::routing::post;
use serde_json::{Value, json};
use vana_load_client::services::http_client;
use vana_load_client::services::subgraph::{Backoff, SubgraphClient};

/// The block the file is registered at.
const BLOCK: u64 = 40;

#[derive(Default)]
struct Seen {
    meta: u64,
    files: u64,
}

/// A subgraph whose head is `BLOCK - 1` until `delay` has passed, then
/// `BLOCK` with file `7` of every user; counts queries by operation.
async fn subgraph(delay: Duration) -> (url::Url, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let started = Instant::now();
    let counts = seen.clone();
    let app = Router::new().route(
        "/subgraphs/name/vana",
        post(move |Json(req): Json<Value>| {
            let counts = counts.clone();
            async move {
                let indexed = started.elapsed() >= delay;
                let head = if indexed { BLOCK } else { BLOCK - 1 };
                let meta = json!({"block": {"number": head, "timestamp": 1, "hash": "0x01"},
                    "deployment": "fake", "hasIndexingErrors": false});
                let op = req["operationName"].as_str().unwrap_or_default().to_string();
                let mut c = counts.lock().unwrap();
                match op.as_str() {
                    "GetSubgraphMeta" => {
                        c.meta += 1;
                        Json(json!({"data": {"_meta": meta}}))
                    }
                    "GetUserFilesPaginated" => {
                        c.files += 1;
                        let files = if indexed {
                            json!([{"id": "7", "url": "ipfs://x", "schemaId": "0",
                                "addedAtBlock": BLOCK.to_string(), "addedAtTimestamp": "1",
                                "transactionHash": "0x01", "owner": {"id": "0x01"}}])
                        } else {
                            json!([])
                        };
                        Json(json!({"data": {"user": {"id": "0x01", "files": files}, "_meta": meta}}))
                    }
                    other => panic!("unexpected operation {other:?}"),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/subgraphs/name/vana",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url.parse().unwrap(), seen)
}

const BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(100),
    max: Duration::from_millis(800),
};

#[test]
fn the_schedule_doubles_to_its_cap() {
    let d: Vec<u64> = (0..6)
        .map(|n| BACKOFF.delay(n).as_millis() as u64)
        .collect();
    assert_eq!(d, [100, 200, 400, 800, 800, 800]);
    // Polls at 0, 0.1, 0.3, 0.7, 1.5, 2.3 s: five fit in 2 s.
    assert_eq!(BACKOFF.polls_within(Duration::from_secs(2)), 5);
    assert_eq!(BACKOFF.polls_within(Duration::ZERO), 1);
}

#[tokio::test]
async fn a_delayed_subgraph_is_polled_with_backoff_and_meta_only_until_it_is_reached() {
    let delay = Duration::from_secs(2);
    let (url, seen) = subgraph(delay).await;
    let client = SubgraphClient::with_meta_ttl(http_client(), &url, BACKOFF.initial);
    let user = Address::with_last_byte(1);

    let started = Instant::now();
    let mut queries = 0;
    tokio::time::timeout(
        Duration::from_secs(10),
        client.wait_for_file(user, "7", BLOCK, BACKOFF, &mut queries),
    )
    .await
    .expect("the file is found")
    .expect("no error");
    let waited = started.elapsed();
    assert!(waited >= delay, "found before the subgraph indexed it");

    let (meta, files) = {
        let s = seen.lock().unwrap();
        (s.meta, s.files)
    };
    // `_meta` is polled on the schedule, and the files once, when it is there.
    let allowed = u64::from(BACKOFF.polls_within(waited));
    assert!(
        meta <= allowed,
        "{meta} _meta queries in {waited:?}; the schedule allows {allowed}"
    );
    assert!(meta >= 2, "the head was polled ({meta})");
    assert_eq!(files, 1, "the files are asked for once the head is reached");
    assert_eq!(queries, meta + files, "every query is counted");
    // Polling every 100 ms without backoff would have sent about 20.
    assert!(queries <= 7, "{queries} queries");

    // Another file at a block the cached head already reaches: no `_meta` query.
    let mut again = 0;
    client
        .wait_for_file(user, "7", BLOCK - 5, BACKOFF, &mut again)
        .await
        .unwrap();
    assert_eq!(again, 1, "only the files query");
    assert_eq!(seen.lock().unwrap().meta, meta, "_meta was not asked again");
}

#[tokio::test]
async fn concurrent_waiters_share_one_meta_cache() {
    let delay = Duration::from_secs(1);
    let (url, seen) = subgraph(delay).await;
    let client = SubgraphClient::with_meta_ttl(http_client(), &url, BACKOFF.initial);
    let started = Instant::now();
    let mut waiters = Vec::new();
    for i in 0..20u8 {
        let client = client.clone();
        waiters.push(tokio::spawn(async move {
            let mut q = 0;
            tokio::time::timeout(
                Duration::from_secs(10),
                client.wait_for_file(Address::with_last_byte(i), "7", BLOCK, BACKOFF, &mut q),
            )
            .await
            .expect("found")
            .expect("no error");
            q
        }));
    }
    let mut total = 0;
    for w in waiters {
        total += w.await.unwrap();
    }
    let waited = started.elapsed();
    let s = seen.lock().unwrap();
    // One `_meta` query per cache lifetime at most, whatever the number of waiters.
    let per_ttl = (waited.as_millis() / BACKOFF.initial.as_millis()) as u64 + 1;
    assert!(
        s.meta <= per_ttl,
        "{} _meta queries in {waited:?} for 20 waiters",
        s.meta
    );
    assert_eq!(s.files, 20, "one files query per waiter");
    assert_eq!(total, s.meta + s.files, "each query is counted once");
}
