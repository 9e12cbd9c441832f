//! Fuzzed HTTP (bounded property tests): arbitrary methods, paths, headers
//! and bodies — raw bytes, arbitrary JSON, and each endpoint's own JSON with
//! random values — sent to every HTTP endpoint of one running twin (storage
//! and its gateway, relayer, indexer, personal server, inference backend,
//! TEE, the chain's fault proxy and the faults admin endpoint). Every answer
//! must come within 10 s with a status below 500 (bad input is the client's
//! fault: a 4xx), and every service must still answer afterwards.
//!
//! The number of inputs per endpoint is `CASES` (recorded in BENCHMARKS.md,
//! "Reliability").

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use vana_load_twin::faults::FaultsConfig;
use vana_load_twin::{Twin, TwinConfig};

/// Inputs per endpoint.
const CASES: u32 = 200;

/// One request: method, path and query, headers, body.
#[derive(Debug, Clone)]
struct Request {
    method: reqwest::Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// An endpoint: its method, a path pattern (`{}` is a random segment) and
/// the JSON keys its body uses, for bodies that look almost right.
struct Endpoint {
    service: &'static str,
    method: &'static str,
    path: &'static str,
    keys: &'static [&'static str],
    /// The credential it requires, sent with most inputs so they get past it.
    auth: Option<&'static str>,
}

const JWT: &str = vana_load_twin::storage::DEFAULT_JWT;
const TOKEN: &str = vana_load_twin::inference::DEFAULT_TOKEN;

const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        service: "storage",
        method: "POST",
        path: "/pinning/pinFileToIPFS",
        keys: &[],
        auth: Some(JWT),
    },
    Endpoint {
        service: "storage",
        method: "POST",
        path: "/api/v0/add",
        keys: &[],
        auth: None,
    },
    Endpoint {
        service: "storage",
        method: "GET",
        path: "/ipfs/{}",
        keys: &[],
        auth: None,
    },
    Endpoint {
        service: "relayer",
        method: "POST",
        path: "/api/relay",
        keys: &[
            "type",
            "operation",
            "typedData",
            "signature",
            "expectedUserAddress",
            "operationId",
            "params",
        ],
        auth: None,
    },
    Endpoint {
        service: "relayer",
        method: "GET",
        path: "/grants/{}",
        keys: &[],
        auth: None,
    },
    Endpoint {
        service: "indexer",
        method: "POST",
        path: "/subgraphs/name/vana",
        keys: &["query", "variables", "operationName"],
        auth: None,
    },
    Endpoint {
        service: "personal_server",
        method: "GET",
        path: "/api/v1/identity?address={}",
        keys: &[],
        auth: None,
    },
    Endpoint {
        service: "personal_server",
        method: "POST",
        path: "/api/v1/operations",
        keys: &["app_signature", "operation_request_json"],
        auth: None,
    },
    Endpoint {
        service: "personal_server",
        method: "GET",
        path: "/api/v1/operations/{}",
        keys: &[],
        auth: None,
    },
    Endpoint {
        service: "personal_server",
        method: "POST",
        path: "/api/v1/operations/{}/cancel",
        keys: &[],
        auth: None,
    },
    Endpoint {
        service: "inference",
        method: "POST",
        path: "/v1/models/deepseek-ai/deepseek-v3/predictions",
        keys: &["input", "stream", "webhook"],
        auth: Some(TOKEN),
    },
    Endpoint {
        service: "inference",
        method: "GET",
        path: "/v1/predictions/{}",
        keys: &[],
        auth: Some(TOKEN),
    },
    Endpoint {
        service: "inference",
        method: "POST",
        path: "/v1/predictions/{}/cancel",
        keys: &[],
        auth: Some(TOKEN),
    },
    Endpoint {
        service: "tee",
        method: "POST",
        path: "/RunProof",
        keys: &[
            "job_id",
            "file_id",
            "encryption_key",
            "encrypted_encryption_key",
            "proof_url",
            "nonce",
        ],
        auth: None,
    },
    Endpoint {
        service: "chain_proxy",
        method: "POST",
        path: "/",
        keys: &["jsonrpc", "id", "method", "params"],
        auth: None,
    },
];

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
        "0x[0-9a-f]{0,70}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The endpoint's own keys, each with a random value (or left out).
fn near_miss(keys: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::option::of(json_value()), keys.len()).prop_map(move |vals| {
        let obj: serde_json::Map<String, serde_json::Value> = keys
            .iter()
            .zip(vals)
            .filter_map(|(k, v)| Some(((*k).to_owned(), v?)))
            .collect();
        serde_json::to_vec(&obj).unwrap()
    })
}

fn body(keys: &'static [&'static str]) -> BoxedStrategy<Vec<u8>> {
    let raw = prop::collection::vec(any::<u8>(), 0..2048);
    let json = json_value().prop_map(|v| serde_json::to_vec(&v).unwrap());
    if keys.is_empty() {
        prop_oneof![raw, json].boxed()
    } else {
        prop_oneof![raw, json, near_miss(keys)].boxed()
    }
}

fn request(e: &'static Endpoint) -> impl Strategy<Value = Request> {
    let method = prop_oneof![
        4 => Just(e.method),
        1 => prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    ]
    .prop_map(|m| reqwest::Method::from_bytes(m.as_bytes()).unwrap());
    // A path segment: plausible ids, or anything URL-safe once encoded.
    let segment = prop_oneof![
        "[A-Za-z0-9_-]{0,64}",
        "0x[0-9a-fA-F]{40}",
        "0x[0-9a-fA-F]{0,42}",
        "[ -~]{0,80}".prop_map(|s| url_escape(&s)),
        Just("9".repeat(40)),
    ];
    let path = prop_oneof![
        8 => segment.prop_map(move |s| e.path.replace("{}", &s)),
        1 => "/[ -~]{0,60}".prop_map(|s| url_escape(&s)),
    ];
    let header = (
        prop::sample::select(vec![
            "content-type",
            "authorization",
            "accept",
            "x-forwarded-for",
            "x-custom",
        ]),
        "[ -~]{0,60}",
    )
        .prop_map(|(k, v)| (k.to_owned(), v));
    let auth = e.auth;
    (
        method,
        path,
        prop::collection::vec(header, 0..3),
        body(e.keys),
        prop::bool::weighted(0.8),
    )
        .prop_map(move |(method, path, mut headers, body, authorised)| {
            if let (Some(secret), true) = (auth, authorised) {
                headers.push(("authorization".into(), format!("Bearer {secret}")));
            }
            Request {
                method,
                path,
                headers,
                body,
            }
        })
}

/// Percent-encodes what a URL path cannot carry as is (keeps `/`, `?`, `=`, `&`).
fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'/'
            | b'?'
            | b'='
            | b'&' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn send(http: &reqwest::Client, base: &str, r: &Request) -> Result<u16, String> {
    let mut req = http
        .request(r.method.clone(), format!("{base}{}", r.path))
        .body(r.body.clone());
    for (k, v) in &r.headers {
        req = req.header(k, v);
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            // Read the whole answer: a body that never ends is a hang too.
            resp.bytes().await.map_err(|e| format!("body: {e}"))?;
            Ok(status)
        }
        // A request reqwest refuses to build (e.g. a header value) is not sent.
        Err(e) if e.is_builder() => Ok(400),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn every_endpoint_answers_arbitrary_requests_with_a_4xx_or_success() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let twin = rt.block_on(async {
        let mut config = TwinConfig::ephemeral();
        config.faults = Some(FaultsConfig::default());
        config.inference.time_scale = 0.01;
        Twin::start(config).await.expect("the twin starts")
    });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let base = |service: &str| twin.manifest().services[service].url.clone();
    let mut found = Vec::new();
    for e in ENDPOINTS {
        let url = base(e.service);
        let mut runner = TestRunner::new(Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        });
        let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
        let result = runner.run(&request(e), |r| {
            let status = rt
                .block_on(send(&http, &url, &r))
                .map_err(|err| TestCaseError::fail(format!("no answer: {err}")))?;
            *statuses.borrow_mut().entry(status).or_default() += 1;
            prop_assert!(status < 500, "{} {}: HTTP {status}", r.method, r.path);
            Ok(())
        });
        if let Err(err) = result {
            found.push(format!("{} {} {}: {err}", e.service, e.method, e.path));
        }
        let statuses = statuses.into_inner();
        eprintln!("{} {} {}: {statuses:?}", e.service, e.method, e.path);
        // The inputs reached the service, which refused some of them.
        assert!(
            statuses.keys().any(|s| (400..500).contains(s)),
            "{} {}: no input was refused: {statuses:?}",
            e.service,
            e.path
        );
    }
    // The admin endpoint: only bodies it must refuse (a valid one would
    // switch faults on for everything after it).
    let admin = format!("{}/admin/faults", base("faults_admin"));
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let refused = prop::collection::vec(any::<u8>(), 0..512)
        .prop_filter("not valid settings", |b| {
            serde_json::from_slice::<FaultsConfig>(b).is_err()
        });
    if let Err(e) = runner.run(&refused, |b| {
        let r = rt
            .block_on(async { http.put(&admin).body(b).send().await })
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(r.status().as_u16(), 400);
        Ok(())
    }) {
        found.push(format!("faults_admin: {e}"));
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
    assert_eq!(twin.faults().unwrap().get(), FaultsConfig::default());

    // Every service still answers.
    for (name, svc) in &twin.manifest().services {
        let r = rt
            .block_on(async { http.get(&svc.metrics_url).send().await })
            .unwrap_or_else(|e| panic!("{name} no longer answers: {e}"));
        assert_eq!(r.status().as_u16(), 200, "{name}");
    }
    rt.block_on(twin.stop());
}
