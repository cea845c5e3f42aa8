//! The configuration tree: defaults, then a TOML file, then `REGAIN__SECTION__KEY` environment
//! variables, parsed once here and handed down as typed values. Unknown keys are errors, so a
//! typo is caught at startup instead of silently leaving a default in force.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use figment::providers::{Env, Format as _, Toml};
use figment::Figment;
use regain_hashing::{Params, PoolConfig};
use regain_server::ServerConfig;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

/// The file read when neither `--config` nor `REGAIN_CONFIG` names one, if it exists.
pub const DEFAULT_FILE: &str = "regain.toml";
/// The prefix of environment overrides: `REGAIN__SERVER__LISTEN=0.0.0.0:8080`.
pub const ENV_PREFIX: &str = "REGAIN__";
/// What `config show` prints in place of a secret.
pub const REDACTED: &str = "<redacted>";

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerSection,
    pub database: DatabaseSection,
    pub hashing: HashingSection,
    pub log: LogSection,
    pub audit: AuditSection,
    pub crypto: CryptoSection,
    pub delivery: DeliverySection,
    pub risk: RiskSection,
    pub recovery: RecoverySection,
    /// Where a tenant's customer accounts live, by tenant slug (`[connectors.acme]`); a tenant
    /// not named here uses the built-in directory.
    pub connectors: std::collections::BTreeMap<String, ConnectorSection>,
    /// Each tenant's event webhook endpoint, by tenant slug (`[webhooks.acme]`).
    pub webhooks: std::collections::BTreeMap<String, WebhookSection>,
}

/// One tenant's event webhook endpoint (Standard Webhooks).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    pub url: String,
    /// The signing secret, `whsec_…`.
    pub secret: SecretString,
    /// The event types to send (`case.created`, `case.resolved`, …); empty or absent: all.
    #[serde(default)]
    pub events: Vec<String>,
}

/// One tenant's connector.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSection {
    /// `scim` (a SCIM 2.0 service provider) or `webhook` (a signed request to the tenant).
    pub kind: String,
    /// SCIM: the service provider's base URL (`https://idp.example/scim/v2`); webhook: the
    /// endpoint.
    pub url: String,
    /// SCIM: the bearer token, if the provider wants one.
    pub token: Option<SecretString>,
    /// Webhook: the signing secret, `whsec_…` (Standard Webhooks).
    pub secret: Option<SecretString>,
}

/// Executing recoveries (issue 6): the action worker and the reset link.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecoverySection {
    /// How often queued actions (reset links, unlocks, username reminders) are looked for; 0
    /// turns the action worker off in this process.
    pub action_interval_ms: u64,
    /// How long a password reset link works: 5 to 1440 minutes.
    pub reset_link_minutes: u32,
}

impl Default for RecoverySection {
    fn default() -> Self {
        let d = ServerConfig::default();
        Self { action_interval_ms: d.action_interval_ms, reset_link_minutes: d.reset_link_minutes }
    }
}

/// The risk engine's lists and providers (issue 5). Weights and thresholds are in the tenant's
/// policy (`PUT /api/v1/policy`, section `risk`), not here.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskSection {
    /// A folder of list files: `NAME.deny.txt`, `NAME.allow.txt` (IPs and CIDR blocks) and
    /// `NAME.domains.txt` (disposable-email domains) for every tenant, and the same in a
    /// subfolder named by a tenant's slug for that tenant. Empty: `<data_dir>/risk-lists` if it
    /// exists, else no lists.
    pub lists_dir: Option<PathBuf>,
    /// How often the folder is checked for changes; 0 turns reloading off (`POST
    /// /api/v1/risk/lists/reload` still works).
    pub lists_reload_interval_ms: u64,
    /// A CAMARA SIM Swap API root (`https://operator.example/sim-swap/v1`); empty: no SIM-swap
    /// signal.
    pub sim_swap_url: String,
    pub sim_swap_token: Option<SecretString>,
}

impl Default for RiskSection {
    fn default() -> Self {
        Self { lists_dir: None, lists_reload_interval_ms: 10_000, sim_swap_url: String::new(), sim_swap_token: None }
    }
}

/// Where outgoing messages (verification codes, links, notifications) go. `file` appends them
/// to `sink_file` as JSON lines: for the demo and tests only, since codes are written there in
/// the clear. `none` leaves them undelivered (the delivery log shows why).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliverySection {
    /// `none`, `smtp` or `file`.
    pub email: String,
    /// `none`, `webhook` (a generic JSON provider), `twilio` (or a Twilio-compatible API) or `file`.
    pub sms: String,
    /// Empty: `<data_dir>/messages.jsonl`.
    pub sink_file: Option<PathBuf>,
    /// How often the outbox is checked; 0 turns the worker off in this process.
    pub outbox_interval_ms: u64,
    /// Limit on each SMTP command or provider request.
    pub timeout_seconds: u64,
    pub smtp_host: String,
    /// 0: the usual port for `smtp_security` (25, 587 or 465).
    pub smtp_port: u16,
    /// `none`, `starttls` or `tls`.
    pub smtp_security: String,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<SecretString>,
    /// The sender mailbox: `ACME Support <support@acme.example>`.
    pub smtp_from: String,
    pub sms_webhook_url: String,
    pub sms_webhook_token: Option<SecretString>,
    /// Empty: https://api.twilio.com.
    pub twilio_base_url: Option<String>,
    pub twilio_account_sid: String,
    pub twilio_auth_token: Option<SecretString>,
    pub twilio_from: Option<String>,
    pub twilio_messaging_service_sid: Option<String>,
}

impl Default for DeliverySection {
    fn default() -> Self {
        Self {
            email: "none".into(),
            sms: "none".into(),
            sink_file: None,
            outbox_interval_ms: ServerConfig::default().outbox_interval_ms,
            timeout_seconds: 30,
            smtp_host: String::new(),
            smtp_port: 0,
            smtp_security: "starttls".into(),
            smtp_username: None,
            smtp_password: None,
            smtp_from: String::new(),
            sms_webhook_url: String::new(),
            sms_webhook_token: None,
            twilio_base_url: None,
            twilio_account_sid: String::new(),
            twilio_auth_token: None,
            twilio_from: None,
            twilio_messaging_service_sid: None,
        }
    }
}

impl Config {
    /// Where the `file` transport writes, for a database in `data_dir`.
    pub fn sink_file(&self, data_dir: &Path) -> PathBuf {
        self.delivery.sink_file.clone().unwrap_or_else(|| data_dir.join("messages.jsonl"))
    }

    /// The transports for outgoing messages, as configured.
    pub fn transports(&self, data_dir: &Path) -> anyhow::Result<regain_delivery::Router> {
        use std::sync::Arc;

        use regain_delivery::{
            FileSink, JsonWebhookConfig, JsonWebhookSms, SmtpConfig, SmtpSecurity, SmtpTransport, Transport,
            TwilioConfig, TwilioSender, TwilioSms,
        };
        let d = &self.delivery;
        let mut sink: Option<Arc<dyn Transport>> = None;
        let mut file = || -> anyhow::Result<Arc<dyn Transport>> {
            if let Some(s) = &sink {
                return Ok(s.clone());
            }
            let path = self.sink_file(data_dir);
            let s: Arc<dyn Transport> =
                Arc::new(FileSink::open(&path).with_context(|| format!("delivery.sink_file {}", path.display()))?);
            sink = Some(s.clone());
            Ok(s)
        };
        let email: Option<Arc<dyn Transport>> = match d.email.as_str() {
            "none" => None,
            "file" => Some(file()?),
            "smtp" => {
                let security = match d.smtp_security.as_str() {
                    "none" => SmtpSecurity::None,
                    "starttls" => SmtpSecurity::StartTls,
                    "tls" => SmtpSecurity::Tls,
                    other => bail!("delivery.smtp_security must be none, starttls or tls (got {other:?})"),
                };
                let port = if d.smtp_port == 0 { security.default_port() } else { d.smtp_port };
                let config = SmtpConfig {
                    host: d.smtp_host.clone(),
                    port,
                    security,
                    username: d.smtp_username.clone(),
                    password: d.smtp_password.clone(),
                    from: d.smtp_from.clone(),
                    timeout_seconds: d.timeout_seconds,
                };
                Some(Arc::new(SmtpTransport::new(config).context("delivery (smtp)")?))
            }
            other => bail!("delivery.email must be none, smtp or file (got {other:?})"),
        };
        let sms: Option<Arc<dyn Transport>> = match d.sms.as_str() {
            "none" => None,
            "file" => Some(file()?),
            "webhook" => {
                let config = JsonWebhookConfig {
                    url: d.sms_webhook_url.clone(),
                    token: d.sms_webhook_token.clone(),
                    timeout_seconds: d.timeout_seconds,
                };
                Some(Arc::new(JsonWebhookSms::new(config).context("delivery (sms webhook)")?))
            }
            "twilio" => {
                let sender = match (&d.twilio_from, &d.twilio_messaging_service_sid) {
                    (Some(from), None) => TwilioSender::From(from.clone()),
                    (None, Some(sid)) => TwilioSender::MessagingServiceSid(sid.clone()),
                    _ => bail!("delivery: set exactly one of twilio_from and twilio_messaging_service_sid"),
                };
                let Some(token) = d.twilio_auth_token.clone() else {
                    bail!("delivery.twilio_auth_token is required for sms = \"twilio\"");
                };
                let config = TwilioConfig {
                    base_url: d.twilio_base_url.clone(),
                    account_sid: d.twilio_account_sid.clone(),
                    auth_token: token,
                    sender,
                    timeout_seconds: d.timeout_seconds,
                };
                Some(Arc::new(TwilioSms::new(config).context("delivery (twilio)")?))
            }
            other => bail!("delivery.sms must be none, webhook, twilio or file (got {other:?})"),
        };
        Ok(regain_delivery::Router::new(email, sms))
    }
}

/// The master key that wraps every customer's and case's data key (personal data at rest).
/// Without `master_key`, it is read from `master_key_file`, which is created with a new, empty
/// database and never over an existing one.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CryptoSection {
    /// Base64 (or hex) of 32 bytes. A secret: never printed or logged.
    pub master_key: Option<SecretString>,
    /// The key file; empty means `<data_dir>/master.key`.
    pub master_key_file: Option<PathBuf>,
}

impl Config {
    /// Where the master key file is for a database in `data_dir` (whether or not the key is
    /// read from it).
    pub fn master_key_file(&self, data_dir: &Path) -> PathBuf {
        self.crypto.master_key_file.clone().unwrap_or_else(|| data_dir.join("master.key"))
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    pub listen: SocketAddr,
    pub public_url: String,
    pub cookie_secure: bool,
    pub request_timeout_ms: u64,
    pub body_max_bytes: usize,
    pub session_idle_minutes: u32,
    pub session_absolute_hours: u32,
    pub customer_session_minutes: u32,
    pub expiry_sweep_interval_ms: u64,
}

impl Default for ServerSection {
    /// The server crate's defaults, so the two can never disagree.
    fn default() -> Self {
        let d = ServerConfig::default();
        Self {
            listen: d.listen,
            public_url: d.public_url,
            cookie_secure: d.cookie_secure,
            request_timeout_ms: d.request_timeout_ms,
            body_max_bytes: d.body_max_bytes,
            session_idle_minutes: d.session_idle_minutes,
            session_absolute_hours: d.session_absolute_hours,
            customer_session_minutes: d.customer_session_minutes,
            expiry_sweep_interval_ms: d.expiry_sweep_interval_ms,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSection {
    /// May hold a password, so it is a secret: never printed or logged.
    /// `None` means the SQLite file in `data_dir`.
    pub url: Option<SecretString>,
    pub data_dir: PathBuf,
    pub connections_max: u32,
    pub acquire_timeout_ms: u64,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        Self { url: None, data_dir: PathBuf::from("data"), connections_max: 16, acquire_timeout_ms: 5_000 }
    }
}

impl DatabaseSection {
    /// The database URL in force: the configured one, else `sqlite://<data_dir>/regain.db`.
    pub fn url(&self) -> SecretString {
        match &self.url {
            Some(url) => url.clone(),
            None => SecretString::from(format!("sqlite://{}", self.data_dir.join("regain.db").display())),
        }
    }
}

/// The audit log's identity. Without `signing_key`, the key lives in `<data_dir>/audit-signing.key`
/// (created with a new, empty log; never over an existing one).
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSection {
    /// Base64 of the 32-byte Ed25519 seed. A secret: never printed or logged.
    pub signing_key: Option<SecretString>,
    /// The log's name in every checkpoint; fixed for the life of the log.
    pub origin: Option<String>,
    /// How often waiting entries are placed in the log and a checkpoint signed; 0: never in
    /// this process.
    pub sequence_interval_ms: u64,
}

impl Default for AuditSection {
    fn default() -> Self {
        Self {
            signing_key: None,
            origin: None,
            sequence_interval_ms: ServerConfig::default().audit_sequence_interval_ms,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HashingSection {
    /// 0: one per core.
    pub workers: usize,
    /// 0: 64 per worker.
    pub queue_max: usize,
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

impl Default for HashingSection {
    fn default() -> Self {
        let params = Params::default();
        Self { workers: 0, queue_max: 0, m_kib: params.m_kib, t: params.t, p: params.p }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON for `serve` (log collectors), text for everything else (people).
    #[default]
    Auto,
    Json,
    Text,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    pub format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        Self { format: LogFormat::Auto, level: "info".to_owned() }
    }
}

impl Config {
    /// Reads the configuration: defaults ← `file` (when given, it must exist; otherwise
    /// `regain.toml` in the current directory if present) ← `REGAIN__…` variables.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::new();
        match file {
            Some(path) => {
                if !path.is_file() {
                    bail!("config file {} does not exist", path.display());
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None if Path::new(DEFAULT_FILE).is_file() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_FILE));
            }
            None => {}
        }
        let figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__"));
        let config: Self = figment.extract().map_err(describe_errors)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot say.
    fn validate(&self) -> anyhow::Result<()> {
        let s = &self.server;
        let url = &s.public_url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("server.public_url must start with http:// or https:// (got {url:?})");
        }
        const DAY_MS: u64 = 24 * 60 * 60 * 1000;
        // A limit on everything: the largest values are far beyond any sane setting, and keep
        // the time arithmetic they feed from overflowing.
        for (key, value, max) in [
            ("server.request_timeout_ms", s.request_timeout_ms, 10 * 60 * 1000),
            ("server.body_max_bytes", s.body_max_bytes as u64, 16 * 1024 * 1024),
            ("server.session_idle_minutes", u64::from(s.session_idle_minutes), 24 * 60),
            ("server.session_absolute_hours", u64::from(s.session_absolute_hours), 24 * 30),
            ("server.customer_session_minutes", u64::from(s.customer_session_minutes), 24 * 60),
            ("database.connections_max", u64::from(self.database.connections_max), 1_000),
            ("database.acquire_timeout_ms", self.database.acquire_timeout_ms, 10 * 60 * 1000),
        ] {
            if value == 0 || value > max {
                bail!("{key} must be between 1 and {max} (got {value})");
            }
        }
        if self.audit.sequence_interval_ms > 60_000 {
            bail!("audit.sequence_interval_ms must be at most 60000 (a checkpoint at least every minute), or 0");
        }
        if let Some(origin) = &self.audit.origin {
            if origin.is_empty() || origin.contains(char::is_whitespace) || origin.contains('+') {
                bail!("audit.origin must be a non-empty name without spaces or '+' (got {origin:?})");
            }
        }
        if s.expiry_sweep_interval_ms > DAY_MS {
            bail!("server.expiry_sweep_interval_ms must be at most {DAY_MS} (one day), or 0 to turn the sweeper off");
        }
        // The outbox's lease covers a batch of 20 sends; each is limited by this.
        if !(1..=40).contains(&self.delivery.timeout_seconds) {
            bail!("delivery.timeout_seconds must be between 1 and 40 (got {})", self.delivery.timeout_seconds);
        }
        if self.delivery.outbox_interval_ms > 60_000 {
            bail!("delivery.outbox_interval_ms must be at most 60000, or 0 to turn the worker off in this process");
        }
        if self.recovery.action_interval_ms > 60_000 {
            bail!(
                "recovery.action_interval_ms must be at most 60000, or 0 to turn the action worker off in this process"
            );
        }
        if !(5..=1440).contains(&self.recovery.reset_link_minutes) {
            bail!("recovery.reset_link_minutes must be between 5 and 1440 (got {})", self.recovery.reset_link_minutes);
        }
        self.connector_configs()?;
        self.webhook_endpoints()?;
        if self.risk.lists_reload_interval_ms > DAY_MS {
            bail!("risk.lists_reload_interval_ms must be at most {DAY_MS} (one day), or 0 to turn reloading off");
        }
        let url = &self.risk.sim_swap_url;
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            bail!("risk.sim_swap_url must start with https:// (or http:// for a local provider)");
        }
        if self.log.level.trim().is_empty() {
            bail!("log.level must not be empty (try \"info\")");
        }
        crate::logging::level_filter(&self.log.level)?;
        self.pool_config()?;
        Ok(())
    }

    pub fn server_config(&self) -> ServerConfig {
        let s = &self.server;
        ServerConfig {
            listen: s.listen,
            public_url: s.public_url.clone(),
            cookie_secure: s.cookie_secure,
            request_timeout_ms: s.request_timeout_ms,
            body_max_bytes: s.body_max_bytes,
            session_idle_minutes: s.session_idle_minutes,
            session_absolute_hours: s.session_absolute_hours,
            customer_session_minutes: s.customer_session_minutes,
            expiry_sweep_interval_ms: s.expiry_sweep_interval_ms,
            audit_sequence_interval_ms: self.audit.sequence_interval_ms,
            outbox_interval_ms: self.delivery.outbox_interval_ms,
            risk_lists_reload_interval_ms: self.risk.lists_reload_interval_ms,
            action_interval_ms: self.recovery.action_interval_ms,
            reset_link_minutes: self.recovery.reset_link_minutes,
            connectors: self.connector_configs().unwrap_or_default(),
            webhooks: self.webhook_endpoints().unwrap_or_default(),
        }
    }

    /// The tenants' webhook endpoints, checked: an http(s) URL, a `whsec_` secret, known events.
    pub fn webhook_endpoints(
        &self,
    ) -> anyhow::Result<std::collections::BTreeMap<String, regain_server::webhooks::WebhookEndpoint>> {
        use regain_server::webhooks::{WebhookEndpoint, EVENT_TYPES};
        let mut out = std::collections::BTreeMap::new();
        for (slug, w) in &self.webhooks {
            let at = format!("webhooks.{slug}");
            if !(w.url.starts_with("https://") || w.url.starts_with("http://")) {
                bail!("{at}.url must start with https:// (or http:// for a local endpoint)");
            }
            let secret = regain_delivery::signing::WebhookSecret::parse(w.secret.expose_secret())
                .map_err(|e| anyhow::anyhow!("{at}.secret: {e}"))?;
            if let Some(unknown) = w.events.iter().find(|e| !EVENT_TYPES.contains(&e.as_str())) {
                bail!("{at}.events: {unknown:?} is not one of {}", EVENT_TYPES.join(", "));
            }
            let events = (!w.events.is_empty()).then(|| w.events.iter().cloned().collect());
            out.insert(slug.clone(), WebhookEndpoint { url: w.url.clone(), secret, events });
        }
        Ok(out)
    }

    /// The tenants' connectors, checked: a known kind, an http(s) URL, the secret a kind needs.
    pub fn connector_configs(
        &self,
    ) -> anyhow::Result<std::collections::BTreeMap<String, regain_server::recovery::connector::ConnectorConfig>> {
        use regain_server::recovery::connector::ConnectorConfig;
        let mut out = std::collections::BTreeMap::new();
        for (slug, c) in &self.connectors {
            let at = format!("connectors.{slug}");
            if !(c.url.starts_with("https://") || c.url.starts_with("http://")) {
                bail!("{at}.url must start with https:// (or http:// for a local peer)");
            }
            let config = match c.kind.as_str() {
                "scim" => ConnectorConfig::Scim {
                    url: c.url.clone(),
                    token: c.token.as_ref().map(|t| t.expose_secret().to_owned()),
                },
                "webhook" => {
                    let Some(secret) = &c.secret else {
                        bail!("{at}.secret is needed for a webhook connector (whsec_…)")
                    };
                    let secret = regain_delivery::signing::WebhookSecret::parse(secret.expose_secret())
                        .map_err(|e| anyhow::anyhow!("{at}.secret: {e}"))?;
                    ConnectorConfig::Webhook { url: c.url.clone(), secret }
                }
                other => bail!("{at}.kind must be scim or webhook (got {other:?})"),
            };
            out.insert(slug.clone(), config);
        }
        Ok(out)
    }

    /// The lists folder in use: the configured one, else `<data_dir>/risk-lists` when it exists.
    pub fn risk_lists_dir(&self, data_dir: &Path) -> Option<PathBuf> {
        match &self.risk.lists_dir {
            Some(dir) => Some(dir.clone()),
            None => Some(data_dir.join("risk-lists")).filter(|d| d.is_dir()),
        }
    }

    /// The risk engine: the lists loaded now (a file that does not parse stops the start, with
    /// its name and line) and the SIM-swap provider, if configured.
    pub fn risk_engine(&self, data_dir: &Path) -> anyhow::Result<regain_server::risk::RiskEngine> {
        use regain_server::risk::{lists::Lists, simswap::HttpSimSwap, RiskEngine};
        let lists = Lists::load(self.risk_lists_dir(data_dir), chrono::Utc::now())
            .map_err(|e| anyhow::anyhow!("risk lists: {e}"))?;
        let sim_swap: Option<std::sync::Arc<dyn regain_server::risk::simswap::SimSwapProvider>> =
            if self.risk.sim_swap_url.is_empty() {
                None
            } else {
                // A backstop: the policy's deadline (at most 5 s) is what bounds an assessment.
                let provider = HttpSimSwap::new(&self.risk.sim_swap_url, self.risk.sim_swap_token.clone(), 5_000)
                    .map_err(|e| anyhow::anyhow!("risk.sim_swap_url: {e}"))?;
                Some(std::sync::Arc::new(provider))
            };
        Ok(RiskEngine::new(lists, sim_swap))
    }

    /// The hashing pool's settings with the zeros resolved; refuses parameters below the floor.
    pub fn pool_config(&self) -> anyhow::Result<PoolConfig> {
        let h = &self.hashing;
        let params = Params { m_kib: h.m_kib, t: h.t, p: h.p }.validate().context("hashing")?;
        let workers =
            if h.workers == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { h.workers };
        let queue_max = if h.queue_max == 0 { workers.saturating_mul(64) } else { h.queue_max };
        Ok(PoolConfig { workers, queue_max, params })
    }

    /// The effective configuration as TOML, secrets replaced by `<redacted>`, for
    /// `regain config show`. Sections and keys in the order of the reference, with the value a
    /// 0 or `auto` resolves to as a comment.
    pub fn to_redacted_toml(&self) -> anyhow::Result<String> {
        use toml::Value;
        /// A key, its value, and a note for the comment after it.
        type Entry = (&'static str, Value, String);
        let s = &self.server;
        let d = &self.database;
        let h = &self.hashing;
        let pool = self.pool_config()?;
        let int = |v: u64| Value::Integer(i64::try_from(v).unwrap_or(i64::MAX));
        let text = |v: String| Value::String(v);
        let format = Value::try_from(self.log.format).context("log.format")?;
        let a = &self.audit;
        let c = &self.crypto;
        let r = &self.risk;
        let sections: [(&str, Vec<Entry>); 9] = [
            (
                "server",
                vec![
                    ("listen", text(s.listen.to_string()), String::new()),
                    ("public_url", text(s.public_url.clone()), String::new()),
                    ("cookie_secure", Value::Boolean(s.cookie_secure), String::new()),
                    ("request_timeout_ms", int(s.request_timeout_ms), String::new()),
                    ("body_max_bytes", int(s.body_max_bytes as u64), String::new()),
                    ("session_idle_minutes", int(s.session_idle_minutes.into()), String::new()),
                    ("session_absolute_hours", int(s.session_absolute_hours.into()), String::new()),
                    ("customer_session_minutes", int(s.customer_session_minutes.into()), String::new()),
                    ("expiry_sweep_interval_ms", int(s.expiry_sweep_interval_ms), String::new()),
                ],
            ),
            (
                "database",
                vec![
                    ("url", text(REDACTED.to_owned()), format!("in use: {}", self.database_display())),
                    ("data_dir", text(d.data_dir.display().to_string()), String::new()),
                    ("connections_max", int(d.connections_max.into()), String::new()),
                    ("acquire_timeout_ms", int(d.acquire_timeout_ms), String::new()),
                ],
            ),
            (
                "hashing",
                vec![
                    ("workers", int(h.workers as u64), format!("in effect: {}", pool.workers)),
                    ("queue_max", int(h.queue_max as u64), format!("in effect: {}", pool.queue_max)),
                    ("m_kib", int(h.m_kib.into()), String::new()),
                    ("t", int(h.t.into()), String::new()),
                    ("p", int(h.p.into()), String::new()),
                ],
            ),
            (
                "audit",
                vec![
                    (
                        "signing_key",
                        text(if a.signing_key.is_some() { REDACTED.to_owned() } else { String::new() }),
                        if a.signing_key.is_some() {
                            String::new()
                        } else {
                            "empty: the key file in data_dir".to_owned()
                        },
                    ),
                    (
                        "origin",
                        text(a.origin.clone().unwrap_or_default()),
                        "empty: from the key file, or public_url's host".to_owned(),
                    ),
                    ("sequence_interval_ms", int(a.sequence_interval_ms), String::new()),
                ],
            ),
            (
                "crypto",
                vec![
                    (
                        "master_key",
                        text(if c.master_key.is_some() { REDACTED.to_owned() } else { String::new() }),
                        if c.master_key.is_some() {
                            String::new()
                        } else {
                            "empty: read from master_key_file".to_owned()
                        },
                    ),
                    (
                        "master_key_file",
                        text(c.master_key_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
                        format!("in use: {}", self.master_key_file(&d.data_dir).display()),
                    ),
                ],
            ),
            ("delivery", {
                let v = &self.delivery;
                let secret =
                    |s: &Option<SecretString>| text(if s.is_some() { REDACTED.to_owned() } else { String::new() });
                let opt = |s: &Option<String>| text(s.clone().unwrap_or_default());
                vec![
                    ("email", text(v.email.clone()), "none, smtp or file".to_owned()),
                    ("sms", text(v.sms.clone()), "none, webhook, twilio or file".to_owned()),
                    (
                        "sink_file",
                        text(v.sink_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
                        format!("in use: {}", self.sink_file(&d.data_dir).display()),
                    ),
                    ("outbox_interval_ms", int(v.outbox_interval_ms), String::new()),
                    ("timeout_seconds", int(v.timeout_seconds), String::new()),
                    ("smtp_host", text(v.smtp_host.clone()), String::new()),
                    ("smtp_port", int(v.smtp_port.into()), "0: the usual port for smtp_security".to_owned()),
                    ("smtp_security", text(v.smtp_security.clone()), "none, starttls or tls".to_owned()),
                    ("smtp_username", opt(&v.smtp_username), String::new()),
                    ("smtp_password", secret(&v.smtp_password), String::new()),
                    ("smtp_from", text(v.smtp_from.clone()), String::new()),
                    ("sms_webhook_url", text(v.sms_webhook_url.clone()), String::new()),
                    ("sms_webhook_token", secret(&v.sms_webhook_token), String::new()),
                    ("twilio_base_url", opt(&v.twilio_base_url), "empty: https://api.twilio.com".to_owned()),
                    ("twilio_account_sid", text(v.twilio_account_sid.clone()), String::new()),
                    ("twilio_auth_token", secret(&v.twilio_auth_token), String::new()),
                    ("twilio_from", opt(&v.twilio_from), String::new()),
                    ("twilio_messaging_service_sid", opt(&v.twilio_messaging_service_sid), String::new()),
                ]
            }),
            (
                "risk",
                vec![
                    (
                        "lists_dir",
                        text(r.lists_dir.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
                        match self.risk_lists_dir(&d.data_dir) {
                            Some(dir) => format!("in use: {}", dir.display()),
                            None => "none: no lists".to_owned(),
                        },
                    ),
                    ("lists_reload_interval_ms", int(r.lists_reload_interval_ms), String::new()),
                    ("sim_swap_url", text(r.sim_swap_url.clone()), "empty: no SIM-swap signal".to_owned()),
                    (
                        "sim_swap_token",
                        text(if r.sim_swap_token.is_some() { REDACTED.to_owned() } else { String::new() }),
                        String::new(),
                    ),
                ],
            ),
            (
                "recovery",
                vec![
                    ("action_interval_ms", int(self.recovery.action_interval_ms), String::new()),
                    ("reset_link_minutes", int(self.recovery.reset_link_minutes.into()), String::new()),
                ],
            ),
            (
                "log",
                vec![
                    ("format", format, "auto: json for serve, text for other commands".to_owned()),
                    ("level", text(self.log.level.clone()), "RUST_LOG, when set, replaces it".to_owned()),
                ],
            ),
        ];
        let mut out = String::new();
        for (slug, c) in &self.connectors {
            let redacted = |s: &Option<SecretString>| if s.is_some() { REDACTED } else { "" };
            out.push_str(&format!(
                "[connectors.{slug}]\nkind = {:?}\nurl = {:?}\ntoken = {:?}\nsecret = {:?}\n\n",
                c.kind,
                c.url,
                redacted(&c.token),
                redacted(&c.secret)
            ));
        }
        for (slug, w) in &self.webhooks {
            out.push_str(&format!(
                "[webhooks.{slug}]\nurl = {:?}\nsecret = {:?}\nevents = {:?}\n\n",
                w.url, REDACTED, w.events
            ));
        }
        for (name, keys) in sections {
            out.push_str(&format!("[{name}]\n"));
            for (key, value, note) in keys {
                let line = format!("{key} = {value}");
                if note.is_empty() {
                    out.push_str(&format!("{line}\n"));
                } else {
                    out.push_str(&format!("{line:<40} # {note}\n"));
                }
            }
            out.push('\n');
        }
        Ok(out.trim_end().to_owned() + "\n")
    }

    /// Where the database is, without credentials: safe to print.
    pub fn database_display(&self) -> String {
        crate::database::display_url(self.database.url().expose_secret())
    }
}

/// Figment reports every bad key; one line each, with the key and where it came from.
fn describe_errors(error: figment::Error) -> anyhow::Error {
    let lines: Vec<String> = error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let source = e
                .metadata
                .as_ref()
                .map(|m| match &m.source {
                    Some(source) => format!(" (from {} {source})", m.name),
                    None => format!(" (from {})", m.name),
                })
                .unwrap_or_default();
            let kind = e.kind.to_string();
            if key.is_empty() {
                format!("{kind}{source}")
            } else {
                format!("{key}: {kind}{source}")
            }
        })
        .collect();
    anyhow::anyhow!("invalid configuration:\n  {}", lines.join("\n  "))
}
