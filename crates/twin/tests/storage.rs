//! The storage service over HTTP: Pinata and Kubo uploads, the gateway, real
//! CIDs, idempotent content-addressed storage, and every rejection (missing or
//! wrong JWT, oversized, malformed multipart and metadata, bad and unknown
//! CIDs, injected faults) with its error body and no state change.

use reqwest::multipart::{Form, Part};
use serde_json::Value;
use sha2::{Digest, Sha256};
use vana_load_twin as twin;

use twin::service::{Secret, ServiceHandle};
use twin::storage::{Config, DEFAULT_JWT, gateway_url, ipfs_url, raw_cid, spawn};

fn form(bytes: Vec<u8>, name: &str) -> Form {
    let meta = serde_json::json!({"name": name, "keyvalues": {"uploadedBy": "vana-sdk", "timestamp": "2026-11-27T00:00:00.000Z"}});
    Form::new()
        .part(
            "file",
            Part::bytes(bytes)
                .file_name(name.to_string())
                .mime_str("application/octet-stream")
                .unwrap(),
        )
        .text("pinataMetadata", meta.to_string())
}

async fn pin(h: &ServiceHandle, form: Form, jwt: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{}/pinning/pinFileToIPFS", h.url()))
        .multipart(form);
    if let Some(jwt) = jwt {
        req = req.bearer_auth(jwt);
    }
    req.send().await.unwrap()
}

async fn add(h: &ServiceHandle, form: Form) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/api/v0/add", h.url()))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// The value of the first sample line of `metrics` that starts with `series`.
async fn metric(h: &ServiceHandle, series: &str) -> Option<f64> {
    let text = reqwest::get(h.metrics_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn stored_bytes(h: &ServiceHandle) -> (f64, f64) {
    (
        metric(h, "storage_quota_used_bytes").await.unwrap(),
        metric(h, "storage_objects").await.unwrap(),
    )
}

async fn error_reason(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    (
        status,
        v["error"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        v["error"]["details"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[tokio::test]
async fn pinata_upload_gives_a_real_cid_and_the_gateway_serves_the_bytes() {
    let h = spawn(Config::default()).await.unwrap();
    let bytes: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    let r = pin(&h, form(bytes.clone(), "upload-1.enc"), Some(DEFAULT_JWT)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let cid = v["IpfsHash"].as_str().unwrap().to_string();
    // Independent check: CIDv1 = 0x01, raw 0x55, sha2-256 0x12, len 0x20, digest; base32 'b'.
    let mut raw = vec![0x01, 0x55, 0x12, 0x20];
    raw.extend_from_slice(&Sha256::digest(&bytes));
    let parsed = cid::Cid::try_from(cid.as_str()).unwrap();
    assert_eq!(parsed.to_bytes(), raw);
    assert!(cid.starts_with("bafkrei"), "{cid}");
    assert_eq!(cid, raw_cid(&bytes).to_string());
    assert_eq!(v["PinSize"], 5000);
    chrono::DateTime::parse_from_rfc3339(v["Timestamp"].as_str().unwrap()).unwrap();
    assert!(v.get("isDuplicate").is_none());
    assert_eq!(ipfs_url(&cid), format!("ipfs://{cid}"));

    let got = reqwest::get(gateway_url(&h.url(), &cid)).await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(
        got.headers()["content-type"].to_str().unwrap(),
        "application/octet-stream"
    );
    assert_eq!(got.bytes().await.unwrap().to_vec(), bytes);
    assert_eq!(stored_bytes(&h).await, (5000.0, 1.0));
    h.stop().await;
}

#[tokio::test]
async fn reupload_is_idempotent_across_both_apis_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: Some(dir.path().to_path_buf()),
        ..Config::default()
    };
    let h = spawn(config.clone()).await.unwrap();
    let bytes = b"the same encrypted file".to_vec();
    let first: Value = pin(&h, form(bytes.clone(), "a.enc"), Some(DEFAULT_JWT))
        .await
        .json()
        .await
        .unwrap();
    let second: Value = pin(&h, form(bytes.clone(), "b.enc"), Some(DEFAULT_JWT))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["IpfsHash"], second["IpfsHash"]);
    assert_eq!(second["isDuplicate"], true);
    assert_eq!(first["Timestamp"], second["Timestamp"]);
    let r = add(&h, form(bytes.clone(), "c.enc")).await;
    assert_eq!(r.status(), 200);
    let kubo: Value = r.json().await.unwrap();
    assert_eq!(kubo["Hash"], first["IpfsHash"]);
    assert_eq!(kubo["Name"], "c.enc");
    assert_eq!(kubo["Size"], bytes.len().to_string());
    assert_eq!(stored_bytes(&h).await, (bytes.len() as f64, 1.0));
    assert_eq!(
        metric(&h, "storage_uploads_total{outcome=\"duplicate\"}").await,
        Some(2.0)
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("blobs")).unwrap().count(),
        1
    );
    h.stop().await;

    let h = spawn(config).await.unwrap();
    assert_eq!(stored_bytes(&h).await, (bytes.len() as f64, 1.0));
    let cid = first["IpfsHash"].as_str().unwrap();
    let got = reqwest::get(gateway_url(&h.url(), cid)).await.unwrap();
    assert_eq!(got.bytes().await.unwrap().to_vec(), bytes);
    h.stop().await;
}

#[tokio::test]
async fn concurrent_uploads_of_the_same_bytes_store_one_object() {
    let dir = tempfile::tempdir().unwrap();
    let h = std::sync::Arc::new(
        spawn(Config {
            data_dir: Some(dir.path().to_path_buf()),
            ..Config::default()
        })
        .await
        .unwrap(),
    );
    let bytes = vec![42u8; 100_000];
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (h, bytes) = (h.clone(), bytes.clone());
            tokio::spawn(async move {
                let r = pin(&h, form(bytes, &format!("f{i}")), Some(DEFAULT_JWT)).await;
                assert_eq!(r.status(), 200);
                r.json::<Value>().await.unwrap()["IpfsHash"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
        })
        .collect();
    let cids: std::collections::HashSet<String> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(cids.len(), 1);
    assert_eq!(stored_bytes(&h).await, (100_000.0, 1.0));
    assert_eq!(
        metric(&h, "storage_uploads_total{outcome=\"duplicate\"}").await,
        Some(19.0)
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("blobs")).unwrap().count(),
        1
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
}

#[tokio::test]
async fn missing_or_wrong_jwt_is_401_and_stores_nothing() {
    let config = Config {
        jwt: Some(Secret::new("s3cret-jwt-value")),
        ..Config::default()
    };
    assert!(!format!("{config:?}").contains("s3cret"));
    let h = spawn(config).await.unwrap();
    let (status, reason, details) =
        error_reason(pin(&h, form(b"x".to_vec(), "x"), None).await).await;
    assert_eq!((status, reason.as_str()), (401, "INVALID_CREDENTIALS"));
    assert!(details.contains("Authorization"), "{details}");
    let (status, reason, details) =
        error_reason(pin(&h, form(b"x".to_vec(), "x"), Some("s3cret-jwt-valuf")).await).await;
    assert_eq!((status, reason.as_str()), (401, "INVALID_CREDENTIALS"));
    assert!(!details.contains("s3cret"), "{details}");
    // A prefix of the right token is still wrong.
    let r = pin(&h, form(b"x".to_vec(), "x"), Some("s3cret")).await;
    assert_eq!(r.status(), 401);
    // A large body is still answered with the 401 (not a reset connection).
    let r = pin(&h, form(vec![0u8; 2 * 1024 * 1024], "big"), Some("wrong")).await;
    assert_eq!(r.status(), 401);
    assert_eq!(stored_bytes(&h).await, (0.0, 0.0));
    let r = pin(&h, form(b"x".to_vec(), "x"), Some("s3cret-jwt-value")).await;
    assert_eq!(r.status(), 200);
    h.stop().await;
}

#[tokio::test]
async fn oversized_upload_is_413_on_both_apis_and_the_limit_itself_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let h = spawn(Config {
        max_upload_bytes: 64 * 1024,
        data_dir: Some(dir.path().to_path_buf()),
        ..Config::default()
    })
    .await
    .unwrap();
    let big = vec![7u8; 256 * 1024];
    let (status, reason, details) =
        error_reason(pin(&h, form(big.clone(), "big"), Some(DEFAULT_JWT)).await).await;
    assert_eq!((status, reason.as_str()), (413, "FILE_TOO_LARGE"));
    assert!(details.contains("65536"), "{details}");
    let r = add(&h, form(big, "big")).await;
    assert_eq!(r.status(), 413);
    let kubo: Value = r.json().await.unwrap();
    assert_eq!(kubo["Type"], "error");
    assert!(kubo["Message"].as_str().unwrap().contains("65536"));
    // Far beyond the body limit too (the connection may be closed early; if a
    // response arrives it is 413).
    if let Ok(r) = reqwest::Client::new()
        .post(format!("{}/pinning/pinFileToIPFS", h.url()))
        .bearer_auth(DEFAULT_JWT)
        .multipart(form(vec![1u8; 3 * 1024 * 1024], "huge"))
        .send()
        .await
    {
        assert_eq!(r.status(), 413);
    }
    assert_eq!(stored_bytes(&h).await, (0.0, 0.0));
    assert_eq!(
        std::fs::read_dir(dir.path().join("blobs")).unwrap().count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
    let r = pin(&h, form(vec![9u8; 64 * 1024], "exact"), Some(DEFAULT_JWT)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(stored_bytes(&h).await, (65536.0, 1.0));
    h.stop().await;
}

#[tokio::test]
async fn malformed_bodies_are_400_with_the_problem_named() {
    let h = spawn(Config::default()).await.unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/pinning/pinFileToIPFS", h.url());

    let r = client
        .post(&url)
        .bearer_auth(DEFAULT_JWT)
        .json(&serde_json::json!({"file": "x"}))
        .send()
        .await
        .unwrap();
    let (status, reason, details) = error_reason(r).await;
    assert_eq!((status, reason.as_str()), (400, "INVALID_REQUEST"));
    assert!(details.contains("multipart"), "{details}");

    let r = client
        .post(&url)
        .bearer_auth(DEFAULT_JWT)
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body("--XYZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\ntrunc")
        .send()
        .await
        .unwrap();
    let (status, _, details) = error_reason(r).await;
    assert_eq!(status, 400);
    assert!(details.contains("malformed multipart"), "{details}");

    let r = pin(
        &h,
        Form::new().text("pinataMetadata", "{\"name\":\"x\"}"),
        Some(DEFAULT_JWT),
    )
    .await;
    let (status, _, details) = error_reason(r).await;
    assert_eq!(status, 400);
    assert!(details.contains("`file` is missing"), "{details}");

    let bad_meta = Form::new()
        .part("file", Part::bytes(b"abc".to_vec()).file_name("a"))
        .text("pinataMetadata", "{not json");
    let (status, _, details) = error_reason(pin(&h, bad_meta, Some(DEFAULT_JWT)).await).await;
    assert_eq!(status, 400);
    assert!(details.contains("pinataMetadata"), "{details}");

    let two_files = Form::new()
        .part("file", Part::bytes(b"a".to_vec()).file_name("a"))
        .part("file", Part::bytes(b"b".to_vec()).file_name("b"));
    let (status, _, details) = error_reason(pin(&h, two_files, Some(DEFAULT_JWT)).await).await;
    assert_eq!(status, 400);
    assert!(details.contains("more than one"), "{details}");

    let r = client
        .post(format!("{}/api/v0/add", h.url()))
        .body("plain")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let kubo: Value = r.json().await.unwrap();
    assert_eq!(kubo["Type"], "error");

    assert_eq!(stored_bytes(&h).await, (0.0, 0.0));
    h.stop().await;
}

#[tokio::test]
async fn gateway_rejects_malformed_and_unknown_cids() {
    let h = spawn(Config::default()).await.unwrap();
    let r = reqwest::get(format!("{}/ipfs/not-a-cid", h.url()))
        .await
        .unwrap();
    let (status, reason, details) = error_reason(r).await;
    assert_eq!((status, reason.as_str()), (400, "INVALID_CID"));
    assert!(details.contains("not-a-cid"), "{details}");
    let unknown = raw_cid(b"never uploaded").to_string();
    let (status, reason, details) =
        error_reason(reqwest::get(gateway_url(&h.url(), &unknown)).await.unwrap()).await;
    assert_eq!((status, reason.as_str()), (404, "NOT_FOUND"));
    assert!(details.contains(&unknown), "{details}");
    // A CIDv0 of the same digest is another object (dag-pb): unknown here.
    let v0 = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG";
    let r = reqwest::get(gateway_url(&h.url(), v0)).await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        metric(
            &h,
            "storage_http_requests_total{method=\"GET\",route=\"/ipfs/{cid}\",status=\"404\"}"
        )
        .await,
        Some(2.0)
    );
    h.stop().await;
}

#[tokio::test]
async fn injected_faults_use_the_configured_status_and_store_nothing() {
    let h = spawn(Config {
        fail_rate: 1.0,
        fail_status: 503,
        ..Config::default()
    })
    .await
    .unwrap();
    let (status, reason, _) =
        error_reason(pin(&h, form(b"abc".to_vec(), "a"), Some(DEFAULT_JWT)).await).await;
    assert_eq!((status, reason.as_str()), (503, "INJECTED_FAULT"));
    assert_eq!(add(&h, form(b"abc".to_vec(), "a")).await.status(), 503);
    assert_eq!(stored_bytes(&h).await, (0.0, 0.0));
    h.stop().await;
}

#[tokio::test]
async fn bad_config_is_a_named_setup_error() {
    for (config, field) in [
        (
            Config {
                fail_rate: 1.5,
                ..Config::default()
            },
            "storage.fail_rate",
        ),
        (
            Config {
                max_upload_bytes: 0,
                ..Config::default()
            },
            "storage.max_upload_bytes",
        ),
        (
            Config {
                fail_status: 200,
                ..Config::default()
            },
            "storage.fail_status",
        ),
    ] {
        let err = spawn(config).await.unwrap_err().to_string();
        assert!(err.contains(field), "{err}");
    }
    let c: Config = toml::from_str("port = 0\nmax_upload_bytes = 100\njwt = \"abc\"\n").unwrap();
    assert_eq!(c.max_upload_bytes, 100);
    assert!(c.jwt.unwrap().matches("abc"));
    assert!(toml::from_str::<Config>("max_upload = 1").is_err());
}
