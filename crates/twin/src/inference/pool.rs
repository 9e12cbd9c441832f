//! The stand-in GPUs: a table of predictions and a bounded pool of workers.
//!
//! Creating a prediction admits it to a FIFO queue (at most `max_queue`
//! waiting, else it is refused) and spawns a task that waits for one of the
//! `workers` permits of a fair semaphore, so at most `workers` predictions are
//! `processing` at once and they start in creation order. A worker holds its
//! permit for a sampled service time, then the prediction ends `succeeded`
//! (with [`output::output_chunks`]) or, with probability `fail_rate`,
//! `failed`. Cancelling wakes the task at once, whether it is queued or
//! running, and frees its slot. Finished predictions are kept for
//! `finished_ttl_secs` and at most `max_finished` of them; older ones are
//! evicted (and then unknown: 404).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use protocol::api::replicate::{Prediction, PredictionMetrics, PredictionStatus, PredictionUrls};

use super::{Config, output};

/// Why a prediction was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueueFull {
    pub depth: usize,
}

struct Entry {
    prediction: Prediction,
    token: CancellationToken,
    created: Instant,
    started: Option<Instant>,
}

#[derive(Default)]
struct Table {
    map: HashMap<String, Entry>,
    /// Predictions admitted and not yet started (nor canceled).
    queued: usize,
    /// Finished predictions, oldest first, for eviction.
    finished: VecDeque<(Instant, String)>,
}

/// The predictions and the workers that run them.
pub struct Backend {
    config: Config,
    base_url: OnceLock<String>,
    table: Mutex<Table>,
    gpus: Arc<Semaphore>,
    rng: Mutex<StdRng>,
    metrics: Metrics,
    /// The HTTP request metrics (`inference_http_*`).
    pub(crate) http: crate::service::HttpMetrics,
    /// The twin's injected faults (`[faults.inference] fail_rate`).
    faults: Option<crate::faults::Faults>,
    /// Cancelled when the service stops: every prediction task ends.
    pub(crate) root: CancellationToken,
}

impl Backend {
    pub(crate) fn new(config: Config, registry: &mut Registry) -> Self {
        let metrics = Metrics::register(registry);
        metrics.workers.set(config.workers as i64);
        let http = crate::service::HttpMetrics::register(registry, super::NAME);
        let rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        let backend = Backend {
            gpus: Arc::new(Semaphore::new(config.workers)),
            config,
            base_url: OnceLock::new(),
            table: Mutex::new(Table::default()),
            rng: Mutex::new(rng),
            metrics,
            http,
            faults: crate::faults::current(),
            root: CancellationToken::new(),
        };
        backend.set_queue_gauges(0);
        backend
    }

    /// Sets the URL predictions' `urls` point at (once the port is known).
    pub(crate) fn set_base_url(&self, url: String) {
        let _ = self.base_url.set(url);
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// Admits a prediction for `model` and starts its task.
    pub(crate) fn create(
        self: &Arc<Self>,
        model: &str,
        input: Map<String, Value>,
    ) -> Result<Prediction, QueueFull> {
        let id = self.new_id();
        let base = self
            .base_url
            .get()
            .map(String::as_str)
            .unwrap_or("http://127.0.0.1");
        let prediction = Prediction {
            id: id.clone(),
            model: model.to_string(),
            version: hex::encode(Sha256::digest(model.as_bytes())),
            input,
            logs: String::new(),
            output: None,
            data_removed: false,
            error: None,
            status: PredictionStatus::Starting,
            source: Some("api".into()),
            created_at: now(),
            started_at: None,
            completed_at: None,
            urls: PredictionUrls {
                get: format!("{base}/v1/predictions/{id}"),
                cancel: format!("{base}/v1/predictions/{id}/cancel"),
                stream: None,
                web: None,
            },
            metrics: None,
        };
        let token = self.root.child_token();
        {
            let mut table = self.table.lock().expect("prediction table lock");
            self.evict(&mut table);
            if table.queued >= self.config.max_queue {
                self.metrics.rejected.inc();
                return Err(QueueFull {
                    depth: table.queued,
                });
            }
            table.queued += 1;
            table.map.insert(
                id.clone(),
                Entry {
                    prediction: prediction.clone(),
                    token: token.clone(),
                    created: Instant::now(),
                    started: None,
                },
            );
            self.set_queue_gauges(table.queued);
            self.metrics.retained.set(table.map.len() as i64);
        }
        tokio::spawn(self.clone().run(id, token));
        Ok(prediction)
    }

    /// The prediction `id`, if known.
    pub(crate) fn get(&self, id: &str) -> Option<Prediction> {
        let mut table = self.table.lock().expect("prediction table lock");
        self.evict(&mut table);
        table.map.get(id).map(|e| e.prediction.clone())
    }

    /// Cancels `id` if it is still queued or running; a finished prediction is
    /// returned unchanged (as Replicate does). `None` if unknown.
    pub(crate) fn cancel(&self, id: &str) -> Option<Prediction> {
        let mut table = self.table.lock().expect("prediction table lock");
        self.evict(&mut table);
        let entry = table.map.get(id)?;
        let status = entry.prediction.status;
        if status.is_terminal() {
            return Some(entry.prediction.clone());
        }
        entry.token.cancel();
        if status == PredictionStatus::Starting {
            table.queued -= 1;
            self.set_queue_gauges(table.queued);
        }
        self.finish(&mut table, id, PredictionStatus::Canceled, None, None)
    }

    /// One prediction's life: wait for a worker, run, finish.
    async fn run(self: Arc<Self>, id: String, token: CancellationToken) {
        let permit = tokio::select! {
            permit = self.gpus.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = token.cancelled() => return,
        };
        let service_time = self.sample_service_time();
        let fails = self.config.fail_rate > 0.0
            && self.rng.lock().expect("rng lock").r#gen::<f64>() < self.config.fail_rate;
        let injected = self.faults.as_ref().is_some_and(|f| {
            let hit = f.roll(f.with(|c| c.inference.fail_rate));
            if hit {
                f.count("inference", "failed_prediction");
            }
            hit
        });
        let fails = fails || injected;
        {
            let mut table = self.table.lock().expect("prediction table lock");
            let queued = table.queued;
            let Some(entry) = table.map.get_mut(&id) else {
                return;
            };
            if entry.prediction.status != PredictionStatus::Starting {
                return; // canceled while its permit was being granted
            }
            entry.prediction.status = PredictionStatus::Processing;
            entry.prediction.started_at = Some(now());
            entry.started = Some(Instant::now());
            self.metrics
                .queue_wait
                .observe(entry.created.elapsed().as_secs_f64());
            table.queued = queued - 1;
            self.set_queue_gauges(table.queued);
        }
        self.metrics.busy.inc();
        let completed = tokio::select! {
            _ = tokio::time::sleep(service_time) => true,
            _ = token.cancelled() => false,
        };
        self.metrics.busy.dec();
        drop(permit);
        if !completed {
            return; // canceled (the canceller recorded it) or the service stopped
        }
        let mut table = self.table.lock().expect("prediction table lock");
        let Some(entry) = table.map.get(&id) else {
            return;
        };
        if entry.prediction.status != PredictionStatus::Processing {
            return;
        }
        if fails {
            let error = format!(
                "prediction failed: injected fault (inference.fail_rate = {})",
                self.config.fail_rate
            );
            self.finish(
                &mut table,
                &id,
                PredictionStatus::Failed,
                None,
                Some(Value::String(error)),
            );
        } else {
            let prompt = entry
                .prediction
                .input
                .get("prompt")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let chunks = output::output_chunks(&entry.prediction.model, prompt);
            let output = Value::Array(chunks.into_iter().map(Value::String).collect());
            self.finish(
                &mut table,
                &id,
                PredictionStatus::Succeeded,
                Some(output),
                None,
            );
        }
    }

    /// Moves `id` to a terminal status and records it; returns the final prediction.
    fn finish(
        &self,
        table: &mut Table,
        id: &str,
        status: PredictionStatus,
        output: Option<Value>,
        error: Option<Value>,
    ) -> Option<Prediction> {
        let entry = table.map.get_mut(id)?;
        let p = &mut entry.prediction;
        p.status = status;
        p.output = output;
        p.error = error;
        p.completed_at = Some(now());
        let predict_time = entry.started.map(|s| s.elapsed().as_secs_f64());
        if let Some(t) = predict_time
            && status != PredictionStatus::Canceled
        {
            self.metrics.service_time.observe(t);
        }
        p.metrics = Some(PredictionMetrics {
            predict_time,
            total_time: Some(entry.created.elapsed().as_secs_f64()),
        });
        p.logs = format!("twin stand-in for a hosted model: {}\n", status.as_str());
        let prediction = p.clone();
        self.metrics
            .finished
            .get_or_create(&[("status", status.as_str())])
            .inc();
        table.finished.push_back((Instant::now(), id.to_string()));
        self.evict(table);
        Some(prediction)
    }

    /// Drops finished predictions beyond the TTL or the cap.
    fn evict(&self, table: &mut Table) {
        let ttl = Duration::from_secs(self.config.finished_ttl_secs);
        while let Some((at, _)) = table.finished.front() {
            if table.finished.len() > self.config.max_finished || at.elapsed() > ttl {
                let (_, id) = table.finished.pop_front().expect("front exists");
                table.map.remove(&id);
            } else {
                break;
            }
        }
        self.metrics.retained.set(table.map.len() as i64);
    }

    fn set_queue_gauges(&self, queued: usize) {
        self.metrics.queue_depth.set(queued as i64);
        let available = (queued < self.config.max_queue && self.config.workers > 0) as i64;
        for model in &self.config.models {
            self.metrics
                .available
                .get_or_create(&[("model", model.clone())])
                .set(available);
        }
    }

    fn sample_service_time(&self) -> Duration {
        let base = self
            .config
            .service_time
            .sample(&mut *self.rng.lock().expect("rng lock"));
        base.mul_f64(self.config.time_scale)
    }

    /// A Replicate-like id: 26 characters of lowercase base32.
    fn new_id(&self) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
        let mut rng = self.rng.lock().expect("rng lock");
        (0..26)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect()
    }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

struct Metrics {
    queue_depth: Gauge,
    busy: Gauge,
    workers: Gauge,
    available: Family<[(&'static str, String); 1], Gauge>,
    finished: Family<[(&'static str, &'static str); 1], Counter>,
    service_time: Histogram,
    queue_wait: Histogram,
    rejected: Counter,
    retained: Gauge,
}

impl Metrics {
    fn register(registry: &mut Registry) -> Self {
        let m = Metrics {
            queue_depth: Gauge::default(),
            busy: Gauge::default(),
            workers: Gauge::default(),
            available: Family::default(),
            finished: Family::default(),
            // 1 ms … ~65 s
            service_time: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            queue_wait: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            rejected: Counter::default(),
            retained: Gauge::default(),
        };
        registry.register(
            "inference_queue_depth",
            "Predictions waiting for a worker",
            m.queue_depth.clone(),
        );
        registry.register(
            "inference_busy_workers",
            "Workers (GPUs) running a prediction",
            m.busy.clone(),
        );
        registry.register(
            "inference_workers",
            "Workers (GPUs) configured",
            m.workers.clone(),
        );
        registry.register(
            "inference_model_available",
            "1 when the model accepts predictions (queue not full), else 0",
            m.available.clone(),
        );
        registry.register(
            "inference_predictions",
            "Predictions finished, by final status",
            m.finished.clone(),
        );
        registry.register(
            "inference_service_time_seconds",
            "Time a worker spent on a prediction (succeeded or failed)",
            m.service_time.clone(),
        );
        registry.register(
            "inference_queue_wait_seconds",
            "Time from creation to a worker picking the prediction up",
            m.queue_wait.clone(),
        );
        registry.register(
            "inference_rejected",
            "Predictions refused because the queue was full (429)",
            m.rejected.clone(),
        );
        registry.register(
            "inference_predictions_retained",
            "Predictions held in memory (queued, running and finished not yet evicted)",
            m.retained.clone(),
        );
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(config: Config) -> Arc<Backend> {
        Arc::new(Backend::new(config, &mut Registry::default()))
    }

    fn input(prompt: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("prompt".into(), prompt.into());
        m
    }

    fn fast(workers: usize, max_queue: usize, ms: u64) -> Config {
        Config {
            workers,
            max_queue,
            service_time: super::super::ServiceTime::Fixed { ms },
            ..Config::default()
        }
    }

    #[tokio::test]
    async fn queue_bound_and_fifo_and_cancel_frees_a_slot() {
        let b = backend(fast(1, 1, 200));
        let first = b.create("m/x", input("a")).unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(
            b.get(&first.id).unwrap().status,
            PredictionStatus::Processing
        );
        let second = b.create("m/x", input("b")).unwrap();
        assert_eq!(b.create("m/x", input("c")), Err(QueueFull { depth: 1 }));
        let canceled = b.cancel(&second.id).unwrap();
        assert_eq!(canceled.status, PredictionStatus::Canceled);
        let third = b.create("m/x", input("d")).unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(
            b.get(&first.id).unwrap().status,
            PredictionStatus::Succeeded
        );
        assert_eq!(
            b.get(&second.id).unwrap().status,
            PredictionStatus::Canceled
        );
        assert_eq!(
            b.get(&third.id).unwrap().status,
            PredictionStatus::Processing
        );
    }

    #[tokio::test]
    async fn evicts_beyond_the_cap() {
        let b = backend(Config {
            max_finished: 2,
            ..fast(4, 10, 1)
        });
        let ids: Vec<String> = (0..3)
            .map(|i| b.create("m/x", input(&i.to_string())).unwrap().id)
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let kept = ids.iter().filter(|id| b.get(id).is_some()).count();
        assert_eq!(kept, 2);
    }

    #[tokio::test]
    async fn stopping_ends_running_tasks() {
        let b = backend(fast(1, 4, 10_000));
        let p = b.create("m/x", input("a")).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        b.root.cancel();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(b.gpus.available_permits(), 1);
        assert_eq!(b.get(&p.id).unwrap().status, PredictionStatus::Processing);
    }
}
