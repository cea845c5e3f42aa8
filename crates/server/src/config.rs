//! What the server needs to know, already parsed (the `cli` crate reads the TOML file and the
//! environment and builds this). Every limit has its unit in its name.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::recovery::connector::ConnectorConfig;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen. Port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// The origin people reach Regain at (`https://desk.example.com`). Links Regain builds use it,
    /// never the request's `Host` header.
    pub public_url: String,
    /// Whether session cookies carry `Secure`. On by default; only a plain-HTTP demo on a
    /// non-localhost address would need it off.
    pub cookie_secure: bool,
    pub request_timeout_ms: u64,
    pub body_max_bytes: usize,
    pub session_idle_minutes: u32,
    pub session_absolute_hours: u32,
    pub customer_session_minutes: u32,
    /// How often expired cases are swept; 0 turns the sweeper off.
    pub expiry_sweep_interval_ms: u64,
    /// How often waiting audit entries are placed in the log and a checkpoint is signed;
    /// 0 turns the sequencer off in this process.
    pub audit_sequence_interval_ms: u64,
    /// How often the outbox is checked for messages to send; 0 turns the worker off in this
    /// process.
    pub outbox_interval_ms: u64,
    /// How often the risk lists' folder is checked for changes; 0 turns reloading off.
    pub risk_lists_reload_interval_ms: u64,
    /// How often queued recovery actions are looked for; 0 turns the action worker off in this
    /// process.
    pub action_interval_ms: u64,
    /// How long a password reset link works (SECURITY.md: 1 hour by default).
    pub reset_link_minutes: u32,
    /// Where each tenant's customer accounts live, by tenant slug; a tenant not here uses the
    /// built-in directory.
    pub connectors: BTreeMap<String, ConnectorConfig>,
    /// Each tenant's event webhook endpoint, by tenant slug.
    pub webhooks: BTreeMap<String, crate::webhooks::WebhookEndpoint>,
}

impl ServerConfig {
    /// The connector of the tenant `slug`, `None` for the built-in directory.
    pub fn connector(&self, slug: &str) -> Option<&ConnectorConfig> {
        self.connectors.get(slug)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://localhost:8080".to_owned(),
            cookie_secure: true,
            request_timeout_ms: 30_000,
            body_max_bytes: 64 * 1024,
            session_idle_minutes: 30,
            session_absolute_hours: 12,
            customer_session_minutes: 60,
            expiry_sweep_interval_ms: 60_000,
            audit_sequence_interval_ms: 500,
            outbox_interval_ms: 1000,
            risk_lists_reload_interval_ms: 10_000,
            action_interval_ms: 1000,
            reset_link_minutes: 60,
            connectors: BTreeMap::new(),
            webhooks: BTreeMap::new(),
        }
    }
}
