//! The state every handler shares.

use std::sync::Arc;

use regain_core::{Clock, Entropy};
use regain_hashing::HashingPool;
use regain_store::Store;

use crate::config::ServerConfig;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub hasher: HashingPool,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub config: Arc<ServerConfig>,
    /// The audit log's identity and signing key.
    pub audit: Arc<crate::audit::AuditLog>,
    /// Where outgoing messages go: SMTP, an SMS provider, or the demo's file sink.
    pub delivery: Arc<regain_delivery::Router>,
    /// The risk engine's lists and providers (issue 5).
    pub risk: Arc<crate::risk::RiskEngine>,
}

impl AppState {
    pub fn now(&self) -> regain_core::Timestamp {
        self.clock.now()
    }
}
