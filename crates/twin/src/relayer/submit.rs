//! An accepted call on its way to the chain: every call is first simulated
//! (its gas estimate or an `eth_call`; a revert here, such as a replayed
//! signed request, is reported by the contract's error name with no nonce
//! used and nothing sent), it waits for a slot in the
//! least-loaded key's window, and that key's sender broadcasts it. The
//! answer then depends on the protocol: the SDK's `signed{hash}` once
//! broadcast, or the extension's `confirmed` / `submitted` / `pending`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::eips::BlockId;
use alloy::primitives::{Address, B256, Bytes};
use protocol::api::relayer::RelayResponse;
use tokio::sync::oneshot;

use super::Relayer;
use super::config::WaitMode;
use super::http::{Failure, Protocol};
use super::ops::{OpEntry, OpStatus};
use super::sender::Job;

impl Relayer {
    /// Sends a checked signed call and answers per `protocol`.
    pub(super) async fn relay_signed(
        self: &Arc<Self>,
        to: Address,
        input: Bytes,
        function: &'static str,
        protocol: Protocol,
    ) -> Result<RelayResponse, Failure> {
        let wait = match protocol {
            Protocol::Sdk => {
                let (_, hash) = self.begin(to, input, function, false).await?;
                return match hash {
                    Some(hash) => Ok(RelayResponse::Signed { hash }),
                    None => Err(Failure::of_operation(format!(
                        "{function} was accepted but not broadcast"
                    ))),
                };
            }
            Protocol::Extension(wait) => wait,
        };
        let (op, _) = self
            .begin(to, input, function, wait == WaitMode::Pending)
            .await?;
        let status = match wait {
            WaitMode::Pending | WaitMode::Submitted => op.status(),
            WaitMode::Confirmed => self.wait_terminal(&op).await,
        };
        match (wait, status) {
            (_, OpStatus::Failed(e)) => Err(Failure::of_operation(e)),
            (WaitMode::Pending, _)
            | (WaitMode::Confirmed, OpStatus::Queued | OpStatus::Submitted(_)) => {
                Ok(RelayResponse::Pending {
                    operation_id: op.id.clone(),
                })
            }
            (_, status) => Ok(status.response(&op.id, true)),
        }
    }

    /// Waits for the operation's receipt, at most `wait_timeout_ms`.
    pub(super) async fn wait_terminal(&self, op: &OpEntry) -> OpStatus {
        op.wait_terminal(Duration::from_millis(self.cfg.wait_timeout_ms))
            .await
    }

    /// Creates the operation and drives it to broadcast (in the background
    /// when `background`; otherwise the broadcast hash comes back). `Err`
    /// only for failures before the operation exists on chain.
    pub(super) async fn begin(
        self: &Arc<Self>,
        to: Address,
        input: Bytes,
        function: &'static str,
        background: bool,
    ) -> Result<(Arc<OpEntry>, Option<B256>), Failure> {
        let op = self.ops.create();
        let accepted_at = Instant::now();
        let key = super::inflight::call_key(to, &input);
        let block = match self.inflight.running(key) {
            Some(_) => BlockId::pending(),
            None => BlockId::latest(),
        };
        let gas = match self
            .gas
            .checked_limit(&self.rpc, self.addresses[0], to, &input, block)
            .await
        {
            Ok(g) => g,
            Err(e) => {
                self.metrics.error(if e.starts_with("revert(") {
                    "revert"
                } else {
                    "rpc"
                });
                op.set(OpStatus::Failed(e.clone()));
                return Err(Failure::of_operation(e));
            }
        };
        self.inflight.insert(key, op.clone());
        let this = self.clone();
        let op2 = op.clone();
        let drive = async move {
            let slot = match this
                .pool
                .acquire(Duration::from_millis(this.cfg.max_wait_ms))
                .await
            {
                Ok(s) => s,
                Err(busy) => {
                    this.metrics.error("busy");
                    op2.set(OpStatus::Failed(busy.to_string()));
                    return Err(busy.to_string());
                }
            };
            let (tx, rx) = oneshot::channel();
            let key = slot.key();
            let job = Job {
                to,
                input,
                gas_limit: gas,
                function,
                op: op2.clone(),
                slot,
                accepted_at,
                reply: tx,
            };
            if this.senders[key].send(job).await.is_err() {
                op2.set(OpStatus::Failed("relayer stopping".into()));
                return Err("relayer stopping".into());
            }
            match rx.await {
                Ok(Ok(hash)) => Ok(hash),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("relayer stopping".into()),
            }
        };
        if background {
            tokio::spawn(drive);
            Ok((op, None))
        } else {
            let hash = drive.await.map_err(Failure::of_operation)?;
            Ok((op, Some(hash)))
        }
    }
}
