//! The command line: every subcommand and flag, with the help text people read.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "regain",
    version,
    about = "Regain: the account-recovery desk for help desks and BPOs.",
    long_about = "Regain: the account-recovery desk for help desks and BPOs.\n\n\
        Configuration comes from defaults, then a TOML file (--config, REGAIN_CONFIG, or \
        ./regain.toml if present), then REGAIN__SECTION__KEY environment variables. \
        `regain config show` prints what is in force.\n\n\
        New here? `regain demo` starts a seeded server and prints how to try it."
)]
pub struct Cli {
    /// The TOML configuration file. Without it, ./regain.toml is read if it exists.
    #[arg(long, global = true, env = "REGAIN_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply database migrations, then serve the API until Ctrl-C or SIGTERM.
    Serve,
    /// Apply pending database migrations and report how many are applied and pending.
    Migrate(MigrateArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage tenants (the client companies the desk serves).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage staff accounts.
    #[command(subcommand)]
    Staff(StaffCommand),
    /// Manage tenant API keys.
    #[command(subcommand, name = "apikey")]
    ApiKey(ApiKeyCommand),
    /// Manage customer records.
    #[command(subcommand)]
    Customer(CustomerCommand),
    /// Print the current 6-digit TOTP code for a base32 secret (to sign in as a demo staff member).
    Totp(TotpArgs),
    /// Seed a demo tenant in a local SQLite file and serve it: the first-run experience.
    Demo(DemoArgs),
    /// Check, export and prove the tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The master key that protects personal data at rest: check it, rotate it.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Show which master key the database needs and which one is configured.
    /// Exit 0 when they match (or the database is new), 2 when they do not.
    Status,
    /// Generate a new master key and re-wrap every data key under it, in one transaction.
    /// With the key in a file, the file is replaced (the old key is kept beside it as
    /// `<file>.<old id>.retired`: backups taken before need it). Stop other `regain serve`
    /// processes on the same database first; they refuse new records until restarted with
    /// the new key.
    Rotate(RotateArgs),
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Write the new key to this file (required when the key comes from crypto.master_key).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the log from its entries and check every checkpoint; names the first entry
    /// that does not verify. Exit 0 verified, 2 not verified, 1 could not check.
    Verify(VerifyArgs),
    /// Write entries, leaf hashes and signed checkpoints to a file anyone can verify.
    Export(ExportArgs),
    /// Print an inclusion proof for one entry against a checkpoint, after checking it.
    Prove(ProveArgs),
    /// Place the entries waiting to be logged and sign a checkpoint now (`serve` does this
    /// continuously; this is for when no server runs).
    Checkpoint,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Check an export file instead of the database.
    #[arg(long)]
    pub file: Option<std::path::PathBuf>,
    /// The log's verifier key (`<name>+<id>+<key>`); by default the configured key's.
    #[arg(long)]
    pub key: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Where to write the export (JSON lines).
    pub file: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub struct ProveArgs {
    /// The entry's position in the log, from 0.
    pub seq: u64,
    /// A checkpoint's size; the latest when absent.
    #[arg(long)]
    pub size: Option<u64>,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Only report how many migrations are applied and pending; change nothing.
    #[arg(long)]
    pub status: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration as TOML, secrets redacted.
    Show,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and print its id.
    Create(TenantCreateArgs),
}

#[derive(Debug, Args)]
pub struct TenantCreateArgs {
    /// Short name used in URLs: 2-63 characters of a-z, 0-9 and '-', starting with a letter.
    #[arg(long)]
    pub slug: String,
    /// The name people see ("ACME Bank").
    #[arg(long)]
    pub name: String,
    /// ISO 3166-1 alpha-2 region for phone numbers written without a country code.
    #[arg(long, default_value = "US")]
    pub region: String,
}

#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Create a staff account and print its TOTP enrolment (shown once).
    Create(StaffCreateArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("scope").required(true).args(["tenant", "deployment"])))]
pub struct StaffCreateArgs {
    /// The tenant (slug) the person works for.
    #[arg(long, value_name = "SLUG")]
    pub tenant: Option<String>,
    /// Create a deployment admin, who belongs to no tenant.
    #[arg(long)]
    pub deployment: bool,
    /// Sign-in email address.
    #[arg(long)]
    pub email: String,
    /// The person's name as shown to colleagues.
    #[arg(long)]
    pub name: String,
    /// agent, supervisor, security_analyst, tenant_admin, auditor or deployment_admin.
    #[arg(long)]
    pub role: String,
    /// Read the password (12 to 128 characters) from the first line of stdin instead of
    /// prompting.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create an API key and print its secret (shown once).
    Create(ApiKeyCreateArgs),
}

#[derive(Debug, Args)]
pub struct ApiKeyCreateArgs {
    /// The tenant (slug) the key acts for.
    #[arg(long, value_name = "SLUG")]
    pub tenant: String,
    /// What the key is for ("zendesk", "crm sync").
    #[arg(long)]
    pub name: String,
    /// What the key may do.
    #[arg(long, value_enum, default_value_t = ApiKeyRole::Integration)]
    pub role: ApiKeyRole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum ApiKeyRole {
    /// A client system: provisions customers, opens and follows cases.
    Integration,
    /// Everything a tenant admin may do.
    TenantAdmin,
}

impl ApiKeyRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Integration => "integration",
            Self::TenantAdmin => "tenant_admin",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum CustomerCommand {
    /// Import customer records from CSV or JSON lines; bad rows are reported, never fatal.
    ///
    /// CSV: a header row naming any of these columns, in any order (username and full_name
    /// are required): external_id, username, account_number, full_name, email,
    /// email_verified, email_added_at, phone, phone_verified, phone_added_at, status,
    /// privileged, vip, totp, recovery_codes_remaining, password. Several emails or phones go
    /// in one cell separated by ';'. Booleans are true/false, 1/0 or yes/no. *_added_at is when
    /// the contact points were registered with you (2024-01-31 or an RFC 3339 time); without
    /// it they count as new, and a proof sent to a new contact point does not count for
    /// recovery until the policy's recent_contact_days have passed. An empty cell means
    /// absent. Line numbers in reports count the header as line 1.
    ///
    /// JSON lines: one object per line, as the API's POST /api/v1/customers takes it.
    ///
    /// Exit status: 0 when every row was imported, 2 when some rows failed, 1 when the import
    /// could not run or had to stop (unreadable file, unknown tenant, database unavailable).
    Import(ImportArgs),
    /// Erase a customer (GDPR Art. 17): delete the record, its contacts, credentials, sessions
    /// and login history, and destroy its keys, so the free text of its cases and every copy in
    /// the audit log can no longer be read. The audit log still verifies. Refused while one of
    /// the customer's cases is open. Cannot be undone.
    Erase(EraseArgs),
}

#[derive(Debug, Args)]
pub struct EraseArgs {
    /// The tenant (slug) the customer belongs to.
    #[arg(long, value_name = "SLUG")]
    pub tenant: String,
    /// The customer's id.
    pub id: String,
    /// Confirm: the erasure cannot be undone.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The tenant (slug) the customers belong to.
    #[arg(long, value_name = "SLUG")]
    pub tenant: String,
    /// The file to import.
    pub file: PathBuf,
    /// The file's format; by default from its extension (.csv, or .jsonl/.ndjson/.json).
    #[arg(long, value_enum)]
    pub format: Option<ImportFormat>,
    /// Also write the failed rows as JSON lines {line, field, message} to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    /// A header row, then one customer per row (see `regain customer import --help`).
    Csv,
    /// One JSON object per line, shaped like the API's customer record.
    Jsonl,
}

#[derive(Debug, Args)]
pub struct TotpArgs {
    /// The base32 secret, as printed when the staff account was created.
    pub secret: String,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to listen; port 0 picks a free port. Default: server.listen (127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Where demo.db lives; created if missing. Default: database.data_dir ("data").
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Delete the demo database first and seed anew.
    #[arg(long)]
    pub fresh: bool,
}
