//! Optional rate limits, as vana-personal-server's limiter applies them
//! (`utils/rate_limit.py`, Upstash fixed windows): `operations` 100 per hour
//! and `identity` 120 per minute, counted per client IP (`X-Forwarded-For`'s
//! first address, else `X-Real-IP`, else the peer) and, for operations, per
//! signer (the address recovered from `app_signature`). Each identifier is
//! checked in turn (IP first) and every check counts, as the real limiter
//! does; the first one over its limit refuses the request with 429, the
//! server's body (`{"detail": {"detail": "Rate limit exceeded. Try again in N
//! seconds", "error_code": "RATE_LIMIT_ERROR"}}`), `Retry-After` and the
//! `X-RateLimit-*` headers.
//!
//! Off by default: a load test from one address would hit them at once.
//! Written by hand because the semantics to copy are this fixed-window
//! counter, not a token bucket (what `governor`/`tower_governor` implement).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, StatusCode, request::Parts};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The `[personal_server.rate_limits]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Default `false`.
    pub enabled: bool,
    /// `POST /operations` per identifier per hour. Default 100.
    pub operations_per_hour: u32,
    /// `GET /identity` per identifier per minute. Default 120.
    pub identity_per_minute: u32,
    /// Count per client IP. Default `true`.
    pub by_ip: bool,
    /// Count operations per signer. Default `true`.
    pub by_signer: bool,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            enabled: false,
            operations_per_hour: 100,
            identity_per_minute: 120,
            by_ip: true,
            by_signer: true,
        }
    }
}

/// The two limited routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Bucket {
    Operations,
    Identity,
}

/// A refusal: the window's limit and when it ends (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limited {
    limit: u32,
    reset: u64,
    retry_after: u64,
}

impl IntoResponse for Limited {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "detail": {
                "detail": format!("Rate limit exceeded. Try again in {} seconds", self.retry_after),
                "error_code": "RATE_LIMIT_ERROR",
            }
        });
        let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
        let headers = response.headers_mut();
        for (name, value) in [
            ("x-ratelimit-limit", self.limit.to_string()),
            ("x-ratelimit-remaining", "0".to_string()),
            ("x-ratelimit-reset", self.reset.to_string()),
            ("retry-after", self.retry_after.to_string()),
        ] {
            headers.insert(name, HeaderValue::from_str(&value).expect("digits"));
        }
        response
    }
}

/// Fixed-window counters: (bucket, identifier) → (window index, count).
pub(super) struct Limiter {
    settings: RateLimits,
    windows: Mutex<HashMap<(Bucket, String), (u64, u32)>>,
}

/// Counters kept before stale windows are dropped.
const PRUNE_AT: usize = 100_000;

impl Limiter {
    pub(super) fn new(settings: RateLimits) -> Self {
        Self {
            settings,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn limit(&self, bucket: Bucket) -> (u32, u64) {
        match bucket {
            Bucket::Operations => (self.settings.operations_per_hour, 3600),
            Bucket::Identity => (self.settings.identity_per_minute, 60),
        }
    }

    /// Counts one request of `bucket` from `ip` (and `signer`); `Err` when an
    /// identifier is over its limit in the current window.
    pub(super) fn check(
        &self,
        bucket: Bucket,
        ip: Option<IpAddr>,
        signer: Option<String>,
    ) -> Result<(), Limited> {
        if !self.settings.enabled {
            return Ok(());
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (limit, window) = self.limit(bucket);
        let index = now / window;
        let mut identifiers = Vec::with_capacity(2);
        if self.settings.by_ip {
            identifiers.push(format!(
                "ip:{}",
                ip.map_or("unknown".into(), |i| i.to_string())
            ));
        }
        if let Some(signer) = signer.filter(|_| self.settings.by_signer) {
            identifiers.push(format!("sig:{signer}"));
        }
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > PRUNE_AT {
            windows.retain(|(b, _), (i, _)| *i == now / self.limit(*b).1);
        }
        for id in identifiers {
            let entry = windows.entry((bucket, id)).or_insert((index, 0));
            if entry.0 != index {
                *entry = (index, 0);
            }
            entry.1 = entry.1.saturating_add(1);
            if entry.1 > limit {
                let reset = (index + 1) * window;
                return Err(Limited {
                    limit,
                    reset,
                    retry_after: reset.saturating_sub(now).max(1),
                });
            }
        }
        Ok(())
    }
}

/// The client's IP as the real server reads it: `X-Forwarded-For`'s first
/// entry, else `X-Real-IP`, else the TCP peer.
pub(super) fn client_ip(headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok())
    };
    header("x-forwarded-for")
        .or_else(|| header("x-real-ip"))
        .or(peer.map(|p| p.ip()))
}

/// The client's IP, from a request's parts (the peer is known when the server
/// runs with connect info).
pub(super) fn client_ip_of(parts: &Parts) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    client_ip(&parts.headers, peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_identifier_has_its_own_window_and_ip_comes_first() {
        let limiter = Limiter::new(RateLimits {
            enabled: true,
            operations_per_hour: 2,
            ..RateLimits::default()
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let op = Bucket::Operations;
        assert!(limiter.check(op, Some(a), Some("s1".into())).is_ok());
        assert!(limiter.check(op, Some(a), Some("s1".into())).is_ok());
        let refused = limiter.check(op, Some(a), Some("s1".into())).unwrap_err();
        assert_eq!(refused.limit, 2);
        assert!((1..=3600).contains(&refused.retry_after));
        // Same signer, other IP: the signer's window is full.
        assert!(limiter.check(op, Some(b), Some("s1".into())).is_err());
        // Other signer, first IP: the IP's window is full.
        assert!(limiter.check(op, Some(a), Some("s2".into())).is_err());
        // The identity bucket is separate.
        assert!(limiter.check(Bucket::Identity, Some(a), None).is_ok());
    }

    #[test]
    fn off_by_default_and_the_forwarded_address_wins() {
        let limiter = Limiter::new(RateLimits::default());
        for _ in 0..200 {
            assert!(limiter.check(Bucket::Identity, None, None).is_ok());
        }
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "10.1.1.1, 10.2.2.2".parse().unwrap());
        let peer: SocketAddr = "127.0.0.1:5".parse().unwrap();
        assert_eq!(client_ip(&headers, Some(peer)), "10.1.1.1".parse().ok());
        assert_eq!(client_ip(&HeaderMap::new(), Some(peer)), Some(peer.ip()));
    }
}
