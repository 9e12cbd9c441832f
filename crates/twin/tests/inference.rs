//! The inference backend over HTTP: Replicate's create/get/cancel, the
//! status life cycle through a bounded worker pool, output derived from the
//! prompt, the queue bound (429), faults, eviction, and every rejection with
//! Replicate's problem body and no state change.

use std::time::{Duration, Instant};

use protocol::api::replicate::{
    CreatePrediction, DEFAULT_MODEL, Prediction, PredictionStatus, ReplicateError, create_path,
};
use rand::SeedableRng;
use serde_json::Value;
use sha2::{Digest, Sha256};
use vana_load_twin as twin;

use twin::inference::{Config, DEFAULT_TOKEN, ServiceTime, spawn};
use twin::service::{Secret, ServiceHandle};

fn fixed(ms: u64) -> Config {
    Config {
        service_time: ServiceTime::Fixed { ms },
        ..Config::default()
    }
}

struct Api {
    h: ServiceHandle,
    client: reqwest::Client,
}

impl Api {
    async fn start(config: Config) -> Self {
        Api {
            h: spawn(config).await.unwrap(),
            client: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.h.url())
    }

    async fn create_raw(
        &self,
        model: &str,
        body: String,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.url(&create_path(model)))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    async fn create(&self, prompt: &str) -> Prediction {
        let body = serde_json::to_string(&CreatePrediction::prompt(prompt, 16384)).unwrap();
        let r = self
            .create_raw(DEFAULT_MODEL, body, Some(DEFAULT_TOKEN))
            .await;
        assert_eq!(r.status(), 201);
        r.json().await.unwrap()
    }

    async fn get(&self, id: &str) -> reqwest::Response {
        self.client
            .get(self.url(&format!("/v1/predictions/{id}")))
            .bearer_auth(DEFAULT_TOKEN)
            .send()
            .await
            .unwrap()
    }

    async fn status(&self, id: &str) -> Prediction {
        let r = self.get(id).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    async fn cancel(&self, id: &str) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/v1/predictions/{id}/cancel")))
            .bearer_auth(DEFAULT_TOKEN)
            .send()
            .await
            .unwrap()
    }

    async fn wait_terminal(&self, id: &str) -> Prediction {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let p = self.status(id).await;
            if p.status.is_terminal() {
                return p;
            }
            assert!(Instant::now() < deadline, "{id} still {:?}", p.status);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn metric(&self, series: &str) -> Option<f64> {
        let text = reqwest::get(self.h.metrics_url())
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
}

async fn problem(r: reqwest::Response) -> ReplicateError {
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let status = r.status().as_u16();
    let e: ReplicateError = r.json().await.unwrap();
    assert_eq!(e.status, status);
    e
}

#[tokio::test]
async fn a_prediction_starts_and_succeeds_with_output_derived_from_the_prompt() {
    let api = Api::start(fixed(50)).await;
    let prompt = "Summarise this data:\n\n{\"steps\": 9120, \"sleep_hours\": 7.5}";
    let p = api.create(prompt).await;
    assert_eq!(p.status, PredictionStatus::Starting);
    assert_eq!(p.model, DEFAULT_MODEL);
    assert_eq!(p.input["prompt"], prompt);
    assert_eq!(p.input["max_tokens"], 16384);
    assert!(p.output.is_none() && p.error.is_none() && p.completed_at.is_none());
    assert_eq!(p.id.len(), 26);
    assert_eq!(p.urls.get, api.url(&format!("/v1/predictions/{}", p.id)));
    assert_eq!(p.urls.cancel, format!("{}/cancel", p.urls.get));
    chrono::DateTime::parse_from_rfc3339(&p.created_at).unwrap();

    let done = api.wait_terminal(&p.id).await;
    assert_eq!(done.status, PredictionStatus::Succeeded);
    assert!(done.started_at.is_some() && done.completed_at.is_some());
    assert!(done.output.as_ref().unwrap().is_array());
    let text = done.output_text().unwrap();
    let out: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        out["prompt_sha256"],
        hex::encode(Sha256::digest(prompt.as_bytes()))
    );
    assert!(out["tail"].as_str().unwrap().contains("7.5}"));
    let predict_time = done.metrics.unwrap().predict_time.unwrap();
    assert!(predict_time >= 0.05, "{predict_time}");
    assert_eq!(
        api.metric("inference_predictions_total{status=\"succeeded\"}")
            .await,
        Some(1.0)
    );
    api.h.stop().await;
}

#[tokio::test]
async fn workers_bound_concurrency_and_the_queue_bound_gives_429() {
    let api = Api::start(Config {
        workers: 1,
        max_queue: 1,
        ..fixed(400)
    })
    .await;
    let a = api.create("a").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let b = api.create("b").await;
    assert_eq!(api.status(&a.id).await.status, PredictionStatus::Processing);
    assert_eq!(api.status(&b.id).await.status, PredictionStatus::Starting);
    assert_eq!(api.metric("inference_busy_workers").await, Some(1.0));
    assert_eq!(api.metric("inference_queue_depth").await, Some(1.0));
    assert_eq!(
        api.metric("inference_model_available{model=\"deepseek-ai/deepseek-v3\"}")
            .await,
        Some(0.0)
    );

    let body = serde_json::to_string(&CreatePrediction::prompt("c", 10)).unwrap();
    let r = api
        .create_raw(DEFAULT_MODEL, body, Some(DEFAULT_TOKEN))
        .await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let e = problem(r).await;
    assert_eq!(e.title, "Request was throttled.");
    assert!(e.detail.contains("max_queue"), "{}", e.detail);
    assert_eq!(api.metric("inference_rejected_total").await, Some(1.0));

    let b = api.wait_terminal(&b.id).await;
    assert_eq!(b.status, PredictionStatus::Succeeded);
    assert_eq!(api.metric("inference_queue_depth").await, Some(0.0));
    assert_eq!(api.metric("inference_busy_workers").await, Some(0.0));
    api.h.stop().await;
}

#[tokio::test]
async fn cancel_running_and_queued_and_a_finished_one_is_unchanged() {
    let api = Api::start(Config {
        workers: 1,
        ..fixed(5_000)
    })
    .await;
    let running = api.create("r").await;
    let queued = api.create("q").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = api.cancel(&queued.id).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Prediction>().await.unwrap().status,
        PredictionStatus::Canceled
    );
    let t0 = Instant::now();
    let c: Prediction = api.cancel(&running.id).await.json().await.unwrap();
    assert_eq!(c.status, PredictionStatus::Canceled);
    assert!(c.output.is_none());
    assert!(t0.elapsed() < Duration::from_secs(1));
    // The worker is free at once: a new prediction starts right away.
    let next = api.create("n").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        api.status(&next.id).await.status,
        PredictionStatus::Processing
    );
    assert_eq!(
        api.metric("inference_predictions_total{status=\"canceled\"}")
            .await,
        Some(2.0)
    );
    api.h.stop().await;

    let api = Api::start(fixed(1)).await;
    let p = api.create("done").await;
    let done = api.wait_terminal(&p.id).await;
    let r = api.cancel(&p.id).await;
    assert_eq!(r.status(), 200);
    let after: Prediction = r.json().await.unwrap();
    assert_eq!(after, done);
    assert_eq!(api.status(&p.id).await, done);
    api.h.stop().await;
}

#[tokio::test]
async fn injected_failure_ends_failed_with_an_error() {
    let api = Api::start(Config {
        fail_rate: 1.0,
        ..fixed(5)
    })
    .await;
    let p = api.create("x").await;
    let done = api.wait_terminal(&p.id).await;
    assert_eq!(done.status, PredictionStatus::Failed);
    assert!(done.output.is_none());
    assert!(done.error_text().unwrap().contains("fail_rate"));
    assert_eq!(
        api.metric("inference_predictions_total{status=\"failed\"}")
            .await,
        Some(1.0)
    );
    api.h.stop().await;
}

#[tokio::test]
async fn finished_predictions_are_evicted_after_the_ttl() {
    let api = Api::start(Config {
        finished_ttl_secs: 0,
        ..fixed(1)
    })
    .await;
    let p = api.create("x").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = api.get(&p.id).await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        api.metric("inference_predictions_retained").await,
        Some(0.0)
    );
    api.h.stop().await;
}

#[tokio::test]
async fn bad_requests_get_replicate_errors_and_change_nothing() {
    let api = Api::start(Config {
        token: Some(Secret::new("r8_secret_token")),
        ..fixed(1)
    })
    .await;
    let good = serde_json::to_string(&CreatePrediction::prompt("p", 1)).unwrap();

    let e = problem(api.create_raw(DEFAULT_MODEL, good.clone(), None).await).await;
    assert_eq!((e.status, e.title.as_str()), (401, "Unauthenticated"));
    let e = problem(
        api.create_raw(DEFAULT_MODEL, good.clone(), Some("r8_secret_tokem"))
            .await,
    )
    .await;
    assert_eq!(e.status, 401);
    assert!(!e.detail.contains("r8_"));
    let r = api
        .client
        .get(api.url("/v1/predictions/abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let t = Some("r8_secret_token");
    let e = problem(api.create_raw(DEFAULT_MODEL, "{\"input\":".into(), t).await).await;
    assert_eq!((e.status, e.title.as_str()), (400, "Invalid JSON"));
    let e = problem(api.create_raw(DEFAULT_MODEL, "{}".into(), t).await).await;
    assert_eq!(e.status, 422);
    assert_eq!(e.invalid_fields.unwrap()[0].field, "input");
    let e = problem(
        api.create_raw(DEFAULT_MODEL, "{\"input\":[]}".into(), t)
            .await,
    )
    .await;
    assert_eq!(e.status, 422);
    let e = problem(
        api.create_raw(DEFAULT_MODEL, "{\"input\":{\"max_tokens\":5}}".into(), t)
            .await,
    )
    .await;
    assert_eq!(e.status, 422);
    assert_eq!(e.invalid_fields.unwrap()[0].field, "input.prompt");
    let e = problem(
        api.create_raw(DEFAULT_MODEL, "{\"input\":{\"prompt\":3}}".into(), t)
            .await,
    )
    .await;
    assert!(e.detail.contains("prompt must be a string"), "{}", e.detail);
    let e = problem(
        api.create_raw(
            DEFAULT_MODEL,
            "{\"input\":{\"prompt\":\"x\",\"max_tokens\":-1}}".into(),
            t,
        )
        .await,
    )
    .await;
    assert_eq!(e.invalid_fields.unwrap()[0].field, "input.max_tokens");
    let e = problem(api.create_raw("meta/llama-9", good.clone(), t).await).await;
    assert_eq!(e.status, 404);
    assert!(e.detail.contains("meta/llama-9"));

    let r = api
        .client
        .get(api.url("/v1/predictions/nope"))
        .bearer_auth("r8_secret_token")
        .send()
        .await
        .unwrap();
    let e = problem(r).await;
    assert_eq!(e.status, 404);
    assert!(e.detail.contains("nope"));
    let r = api
        .client
        .post(api.url("/v1/predictions/nope/cancel"))
        .bearer_auth("r8_secret_token")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.status, 404);

    assert_eq!(
        api.metric("inference_predictions_retained").await,
        Some(0.0)
    );
    assert_eq!(api.metric("inference_queue_depth").await, Some(0.0));
    assert_eq!(
        api.metric("inference_http_requests_total{method=\"POST\",route=\"/v1/models/{owner}/{name}/predictions\",status=\"422\"}")
            .await,
        Some(5.0)
    );
    api.h.stop().await;
}

#[test]
fn default_service_time_is_log_normal_median_4s_within_2_to_10s() {
    let st = ServiceTime::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut ms: Vec<u128> = (0..4001).map(|_| st.sample(&mut rng).as_millis()).collect();
    ms.sort();
    assert!(
        ms[0] >= 2000 && ms[4000] <= 10_000,
        "{} {}",
        ms[0],
        ms[4000]
    );
    let median = ms[2000];
    assert!((3800..=4200).contains(&median), "median {median}");
    assert!(ms[3960] > 6000, "the tail is spread: p99 {}", ms[3960]);
    assert_eq!(
        ServiceTime::Fixed { ms: 123 }.sample(&mut rng),
        Duration::from_millis(123)
    );
}

#[tokio::test]
async fn config_parses_from_toml_and_bad_values_are_named() {
    let c: Config = toml::from_str(
        "workers = 8\ntime_scale = 0.01\ntoken = \"t\"\n[service_time]\nkind = \"fixed\"\nms = 250\n",
    )
    .unwrap();
    assert_eq!(c.workers, 8);
    assert_eq!(c.service_time, ServiceTime::Fixed { ms: 250 });
    assert!(!format!("{c:?}").contains("\"t\""));
    let c: Config =
        toml::from_str("[service_time]\nkind = \"log_normal\"\nmedian_ms = 3000\n").unwrap();
    assert!(matches!(
        c.service_time,
        ServiceTime::LogNormal {
            median_ms: 3000,
            min_ms: 2000,
            ..
        }
    ));
    assert!(toml::from_str::<Config>("worker = 2").is_err());
    for (config, field) in [
        (
            Config {
                workers: 0,
                ..Config::default()
            },
            "inference.workers",
        ),
        (
            Config {
                fail_rate: -0.1,
                ..Config::default()
            },
            "inference.fail_rate",
        ),
        (
            Config {
                time_scale: f64::NAN,
                ..Config::default()
            },
            "inference.time_scale",
        ),
        (
            Config {
                models: vec!["nomodel".into()],
                ..Config::default()
            },
            "inference.models",
        ),
    ] {
        let err = spawn(config).await.unwrap_err().to_string();
        assert!(err.contains(field), "{err}");
    }
}
