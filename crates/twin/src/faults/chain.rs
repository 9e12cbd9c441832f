//! The chain's fault proxy: a JSON-RPC endpoint on loopback that forwards
//! every call to anvil, except those `[faults.chain]` hits. With faults on,
//! it is the twin's published RPC URL, so the services and the load
//! generator all reach the chain through it.
//!
//! Per HTTP request it adds the configured latency, then may hold it without
//! an answer (a stall), answer every call in it with a JSON-RPC error, or,
//! for a lone `eth_sendRawTransaction`, answer with the transaction's hash
//! without passing it on: the sender sees it accepted and it is never mined,
//! as when a node drops a transaction from its pool.
//!
//! Written by hand because it must understand JSON-RPC (call ids, the raw
//! transaction's hash); a generic HTTP proxy could not fake either.

use std::net::SocketAddr;
use std::time::Duration;

use alloy::primitives::keccak256;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::Faults;
use crate::service::{ServiceError, ServiceHandle, serve};

/// The proxy's name in the manifest's services.
pub const NAME: &str = "chain_proxy";

#[derive(Clone)]
struct ProxyState {
    faults: Faults,
    upstream: String,
    http: reqwest::Client,
}

/// Starts the proxy on `addr`, forwarding to `upstream` (anvil's URL).
pub async fn spawn(
    addr: SocketAddr,
    upstream: String,
    faults: Faults,
) -> Result<ServiceHandle, ServiceError> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| ServiceError::Setup {
            service: NAME,
            message: e.to_string(),
        })?;
    let router = Router::new()
        .route("/", post(forward))
        .with_state(ProxyState {
            faults,
            upstream,
            http,
        });
    serve(NAME, addr, router, Default::default()).await
}

/// What the faults decided for one request.
enum Fate {
    Forward,
    Stall(Duration),
    Error,
    Drop,
}

fn decide(faults: &Faults, body: &Value) -> (Duration, Fate) {
    let c = faults.with(|c| c.chain.clone());
    let latency = Duration::from_millis(c.latency_ms);
    let fate = if faults.roll(c.stall_rate) {
        Fate::Stall(Duration::from_millis(c.stall_ms))
    } else if faults.roll(c.error_rate) {
        Fate::Error
    } else if raw_transaction(body).is_some() && faults.roll(c.drop_tx_rate) {
        Fate::Drop
    } else {
        Fate::Forward
    };
    let kind = match fate {
        Fate::Forward => None,
        Fate::Stall(_) => Some("stall"),
        Fate::Error => Some("error"),
        Fate::Drop => Some("drop_tx"),
    };
    if let Some(kind) = kind {
        faults.count("chain", kind);
    }
    (latency, fate)
}

/// The signed bytes of a lone `eth_sendRawTransaction` call.
fn raw_transaction(body: &Value) -> Option<Vec<u8>> {
    if body.get("method")?.as_str()? != "eth_sendRawTransaction" {
        return None;
    }
    let hex = body.get("params")?.get(0)?.as_str()?;
    alloy::primitives::hex::decode(hex).ok()
}

fn rpc_answer(id: &Value, outcome: Result<Value, &str>) -> Value {
    match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(message) => json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {"code": -32603, "message": message},
        }),
    }
}

/// The same answer for every call of a single or batch request.
fn answer_all(body: &Value, outcome: Result<Value, &str>) -> Value {
    let null = Value::Null;
    match body {
        Value::Array(calls) => Value::Array(
            calls
                .iter()
                .map(|c| rpc_answer(c.get("id").unwrap_or(&null), outcome.clone()))
                .collect(),
        ),
        single => rpc_answer(single.get("id").unwrap_or(&null), outcome),
    }
}

async fn forward(State(s): State<ProxyState>, body: Bytes) -> Response {
    let Ok(parsed) = serde_json::from_slice::<Value>(&body) else {
        // Not ours to judge: the node answers malformed requests itself.
        return pass_on(&s, body).await;
    };
    let (latency, fate) = decide(&s.faults, &parsed);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fate {
        Fate::Forward => pass_on(&s, body).await,
        Fate::Stall(hold) => {
            tokio::time::sleep(hold).await;
            (StatusCode::GATEWAY_TIMEOUT, "injected fault: chain stalled").into_response()
        }
        Fate::Error => axum::Json(answer_all(
            &parsed,
            Err("injected fault: the chain refused the call"),
        ))
        .into_response(),
        Fate::Drop => {
            let raw = raw_transaction(&parsed).unwrap_or_default();
            let hash = keccak256(&raw);
            axum::Json(answer_all(&parsed, Ok(json!(hash)))).into_response()
        }
    }
}

async fn pass_on(s: &ProxyState, body: Bytes) -> Response {
    let sent = s
        .http
        .post(&s.upstream)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("chain proxy: cannot reach the node: {e}"),
            )
                .into_response();
        }
    };
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::OK);
    match response.bytes().await {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("chain proxy: the node's answer broke off: {e}"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_of_a_batch_gets_its_own_error() {
        let body = json!([{"id": 1, "method": "a"}, {"id": "x", "method": "b"}]);
        let a = answer_all(&body, Err("no"));
        assert_eq!(a[0]["id"], 1);
        assert_eq!(a[1]["id"], "x");
        assert_eq!(a[1]["error"]["code"], -32603);
    }

    #[test]
    fn only_a_lone_raw_transaction_can_be_dropped() {
        let send = json!({"id": 1, "method": "eth_sendRawTransaction", "params": ["0x0102"]});
        assert_eq!(raw_transaction(&send), Some(vec![1, 2]));
        let call = json!({"id": 1, "method": "eth_call", "params": ["0x0102"]});
        assert_eq!(raw_transaction(&call), None);
        assert_eq!(raw_transaction(&json!([send])), None);
    }
}
