//! Bounded loopback soak of the storage and inference services: 200
//! concurrent uploaders and 200 concurrent prediction clients, each looping
//! for `SOAK_SECS` (default 20, at most 60) seconds, must see no error. Prints
//! requests/s and p50/p99 latencies (recorded in BENCHMARKS.md).
//!
//! `cargo test -p vana-load-twin --test soak_storage_inference -- --ignored --nocapture`

use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::api::replicate::{
    CreatePrediction, DEFAULT_MODEL, Prediction, PredictionStatus, create_path,
};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use vana_load_twin as twin;

use twin::service::ServiceHandle;

const CONCURRENCY: usize = 200;
const UPLOAD_BYTES: usize = 16 * 1024;

fn soak_duration() -> Duration {
    let secs = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(20);
    Duration::from_secs(secs.clamp(1, 60))
}

#[derive(Default)]
struct Samples {
    ok: Vec<Duration>,
    errors: Vec<String>,
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

fn report(name: &str, samples: &mut Samples, elapsed: Duration) -> String {
    samples.ok.sort();
    format!(
        "{name}: {} ok, {} errors, {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        samples.ok.len(),
        samples.errors.len(),
        samples.ok.len() as f64 / elapsed.as_secs_f64(),
        pct(&samples.ok, 0.50),
        pct(&samples.ok, 0.99),
        pct(&samples.ok, 1.0),
    )
}

async fn upload_loop(
    client: reqwest::Client,
    h: Arc<ServiceHandle>,
    worker: usize,
    until: Instant,
    uploads: Arc<Mutex<Samples>>,
    downloads: Arc<Mutex<Samples>>,
) {
    let mut n = 0u64;
    while Instant::now() < until {
        // Distinct content per request (plus a duplicate every 10th).
        let seed = if n % 10 == 9 {
            0
        } else {
            (worker as u64) << 32 | n
        };
        let bytes: Vec<u8> = {
            let mut out = Vec::with_capacity(UPLOAD_BYTES);
            let mut block = Sha256::digest(seed.to_le_bytes());
            while out.len() < UPLOAD_BYTES {
                out.extend_from_slice(&block);
                block = Sha256::digest(block);
            }
            out
        };
        n += 1;
        let form = Form::new()
            .part(
                "file",
                Part::bytes(bytes.clone()).file_name(format!("upload-{worker}-{n}.enc")),
            )
            .text(
                "pinataMetadata",
                "{\"name\":\"soak\",\"keyvalues\":{\"uploadedBy\":\"vana-sdk\"}}",
            );
        let t0 = Instant::now();
        let result = client
            .post(format!("{}/pinning/pinFileToIPFS", h.url()))
            .bearer_auth(twin::storage::DEFAULT_JWT)
            .multipart(form)
            .send()
            .await;
        let cid = match result {
            Ok(r) if r.status() == 200 => {
                let v: Value = r.json().await.unwrap_or_default();
                uploads.lock().await.ok.push(t0.elapsed());
                v["IpfsHash"].as_str().unwrap_or_default().to_string()
            }
            Ok(r) => {
                uploads
                    .lock()
                    .await
                    .errors
                    .push(format!("upload status {}", r.status()));
                continue;
            }
            Err(e) => {
                uploads.lock().await.errors.push(format!("upload: {e}"));
                continue;
            }
        };
        let t0 = Instant::now();
        match client
            .get(twin::storage::gateway_url(&h.url(), &cid))
            .send()
            .await
        {
            Ok(r) if r.status() == 200 => match r.bytes().await {
                Ok(b) if b.as_ref() == bytes.as_slice() => {
                    downloads.lock().await.ok.push(t0.elapsed())
                }
                _ => downloads
                    .lock()
                    .await
                    .errors
                    .push(format!("download {cid}: wrong bytes")),
            },
            Ok(r) => downloads
                .lock()
                .await
                .errors
                .push(format!("download status {}", r.status())),
            Err(e) => downloads.lock().await.errors.push(format!("download: {e}")),
        }
    }
}

async fn predict_loop(
    client: reqwest::Client,
    h: Arc<ServiceHandle>,
    worker: usize,
    until: Instant,
    creates: Arc<Mutex<Samples>>,
    completions: Arc<Mutex<Samples>>,
) {
    let token = twin::inference::DEFAULT_TOKEN;
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let prompt = format!("soak prompt {worker}-{n}\n\n{{\"steps\": {n}}}");
        let t0 = Instant::now();
        let created = client
            .post(format!("{}{}", h.url(), create_path(DEFAULT_MODEL)))
            .bearer_auth(token)
            .json(&CreatePrediction::prompt(&prompt, 16384))
            .send()
            .await;
        let p: Prediction = match created {
            Ok(r) if r.status() == 201 => match r.json().await {
                Ok(p) => p,
                Err(e) => {
                    creates
                        .lock()
                        .await
                        .errors
                        .push(format!("create body: {e}"));
                    continue;
                }
            },
            Ok(r) => {
                creates
                    .lock()
                    .await
                    .errors
                    .push(format!("create status {}", r.status()));
                continue;
            }
            Err(e) => {
                creates.lock().await.errors.push(format!("create: {e}"));
                continue;
            }
        };
        creates.lock().await.ok.push(t0.elapsed());
        // Poll as the SDK does, faster to match the time scale.
        let deadline = Instant::now() + Duration::from_secs(30);
        let outcome = loop {
            tokio::time::sleep(Duration::from_millis(25)).await;
            let r = client.get(&p.urls.get).bearer_auth(token).send().await;
            match r {
                Ok(r) if r.status() == 200 => match r.json::<Prediction>().await {
                    Ok(q) if q.status.is_terminal() => break Ok(q),
                    Ok(_) => {}
                    Err(e) => break Err(format!("poll body: {e}")),
                },
                Ok(r) => break Err(format!("poll status {}", r.status())),
                Err(e) => break Err(format!("poll: {e}")),
            }
            if Instant::now() > deadline {
                break Err(format!("{} not finished after 30 s", p.id));
            }
        };
        match outcome {
            Ok(q) if q.status == PredictionStatus::Succeeded => {
                let text = q.output_text().unwrap_or_default();
                let v: Value = serde_json::from_str(&text).unwrap_or_default();
                if v["prompt_sha256"] == hex::encode(Sha256::digest(prompt.as_bytes())) {
                    completions.lock().await.ok.push(t0.elapsed());
                } else {
                    completions
                        .lock()
                        .await
                        .errors
                        .push("output does not derive from the prompt".into());
                }
            }
            Ok(q) => completions
                .lock()
                .await
                .errors
                .push(format!("ended {:?}", q.status)),
            Err(e) => completions.lock().await.errors.push(e),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: ~20 s (SOAK_SECS); run with --ignored"]
async fn soak_200_uploads_and_200_predictions_without_errors() {
    let storage = Arc::new(
        twin::storage::spawn(twin::storage::Config::default())
            .await
            .unwrap(),
    );
    let inference = Arc::new(
        twin::inference::spawn(twin::inference::Config {
            workers: 64,
            max_queue: 1000,
            time_scale: 0.01, // log-normal 2–10 s, median 4 s → 20–100 ms, median 40 ms
            ..twin::inference::Config::default()
        })
        .await
        .unwrap(),
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(2 * CONCURRENCY)
        .build()
        .unwrap();
    let duration = soak_duration();
    let started = Instant::now();
    let until = started + duration;
    let (uploads, downloads, creates, completions) = (
        Arc::new(Mutex::new(Samples::default())),
        Arc::new(Mutex::new(Samples::default())),
        Arc::new(Mutex::new(Samples::default())),
        Arc::new(Mutex::new(Samples::default())),
    );
    let mut tasks = Vec::new();
    for w in 0..CONCURRENCY {
        tasks.push(tokio::spawn(upload_loop(
            client.clone(),
            storage.clone(),
            w,
            until,
            uploads.clone(),
            downloads.clone(),
        )));
        tasks.push(tokio::spawn(predict_loop(
            client.clone(),
            inference.clone(),
            w,
            until,
            creates.clone(),
            completions.clone(),
        )));
    }
    let hard_stop = Duration::from_secs(duration.as_secs() + 30);
    tokio::time::timeout(hard_stop, futures::future::join_all(tasks))
        .await
        .expect("the soak stops by itself");
    let elapsed = started.elapsed();
    let metrics = reqwest::get(inference.metrics_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let storage_metrics = reqwest::get(storage.metrics_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut lines = vec![format!(
        "soak: {} s, {CONCURRENCY} uploaders ({UPLOAD_BYTES} B each) + {CONCURRENCY} prediction clients",
        elapsed.as_secs_f64().round()
    )];
    let mut all_errors = Vec::new();
    for (name, s) in [
        ("pinFileToIPFS", &uploads),
        ("GET /ipfs/{cid}", &downloads),
        ("create prediction", &creates),
        ("prediction end-to-end", &completions),
    ] {
        let mut s = s.lock().await;
        lines.push(report(name, &mut s, elapsed));
        all_errors.extend(s.errors.iter().take(5).cloned());
        assert!(s.ok.len() >= CONCURRENCY, "{name}: only {} ok", s.ok.len());
    }
    for l in metrics.lines().chain(storage_metrics.lines()) {
        if l.starts_with("inference_predictions_total")
            || l.starts_with("inference_rejected_total")
            || l.starts_with("storage_quota_used_bytes")
            || l.starts_with("storage_objects")
        {
            lines.push(format!("  {l}"));
        }
    }
    println!("{}", lines.join("\n"));
    assert!(all_errors.is_empty(), "errors: {all_errors:?}");
}
