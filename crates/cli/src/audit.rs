//! `regain audit`: the log's signing key, and checking the log as an outsider would.
//!
//! `verify` recomputes the Merkle tree from the entries (in the database, or in an export file),
//! checks every checkpoint's signature and that its size and root are what the entries give, and
//! names the first entry that does not verify. `export` writes what an outside party needs to do
//! the same with the published algorithm (RFC 9162 hashing, C2SP signed notes). `prove` prints an
//! inclusion proof for one entry and checks it.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use regain_merkle::note::{open as open_note, Checkpoint, NoteSigner, NoteVerifier};
use regain_merkle::{append, inclusion_proof_plan, leaf_hash, root_from_frontier, verify_inclusion, Hash};
use regain_server::audit::AuditLog;
use regain_store::Store;
use secrecy::ExposeSecret as _;
use serde_json::{json, Value};

use crate::cli::{AuditCommand, ExportArgs, ProveArgs, VerifyArgs};
use crate::config::Config;
use crate::context::{Context, Schema};

/// The key file's name in the data directory: the log's origin on the first line, the base64
/// seed on the second. Readable by its owner only.
pub const KEY_FILE: &str = "audit-signing.key";
const PAGE: u32 = 10_000;

/// The log's identity for this deployment. A key is created only for a log with no checkpoint
/// yet; a log that has checkpoints needs the key that signed them, or Regain refuses to start.
pub async fn identity(config: &Config, data_dir: &Path, store: &dyn Store) -> anyhow::Result<Arc<AuditLog>> {
    let latest = store.latest_checkpoint().await.context("reading the audit log")?;
    let key_path = data_dir.join(KEY_FILE);
    let (origin, seed) = if let Some(key) = &config.audit.signing_key {
        let seed = decode_seed(key.expose_secret()).context("audit.signing_key")?;
        (config.audit.origin.clone().unwrap_or_else(|| default_origin(config)), seed)
    } else if key_path.exists() {
        read_key_file(&key_path)?
    } else if latest.is_none() {
        let origin = config.audit.origin.clone().unwrap_or_else(|| default_origin(config));
        let (_, seed) = NoteSigner::generate(&origin).context("audit.origin")?;
        write_key_file(&key_path, &origin, &seed)?;
        tracing::info!(path = %key_path.display(), origin, "created the audit log's signing key");
        (origin, seed)
    } else {
        bail!(
            "the audit log has checkpoints but no signing key is configured: set audit.signing_key \
             (REGAIN__AUDIT__SIGNING_KEY) or restore {}; Regain never starts a new key over an existing log",
            key_path.display()
        );
    };
    let log = AuditLog::new(&origin, &seed).map_err(anyhow::Error::msg)?;
    if let Some(latest) = latest {
        if !log.signed(&latest.note) {
            bail!(
                "the audit signing key (origin {origin:?}) did not sign this log's checkpoints: \
                 refusing to extend the log with another key"
            );
        }
    }
    Ok(Arc::new(log))
}

fn default_origin(config: &Config) -> String {
    let host =
        config.server.public_url.split("://").nth(1).unwrap_or("localhost").split('/').next().unwrap_or("localhost");
    format!("{host}/regain-audit")
}

fn decode_seed(text: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = B64.decode(text.trim()).context("not base64")?;
    bytes.try_into().map_err(|_| anyhow::anyhow!("must be 32 bytes (base64 of an Ed25519 seed)"))
}

fn read_key_file(path: &Path) -> anyhow::Result<(String, [u8; 32])> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let (Some(origin), Some(seed)) = (lines.next(), lines.next()) else {
        bail!("{} is not an audit key file (origin, then base64 seed)", path.display());
    };
    Ok((origin.to_owned(), decode_seed(seed).with_context(|| path.display().to_string())?))
}

fn write_key_file(path: &Path, origin: &str, seed: &[u8; 32]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    writeln!(file, "{origin}\n{}", B64.encode(seed)).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

pub async fn run(config: &Config, command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify(args) => verify(config, &args).await,
        AuditCommand::Export(args) => export(config, &args).await,
        AuditCommand::Prove(args) => prove(config, &args).await,
        AuditCommand::Checkpoint => checkpoint(config).await,
    }
}

/// An entry or a checkpoint, in log order, from the database or an export.
enum Item {
    Entry { seq: u64, text: String, leaf: Option<Hash> },
    Checkpoint { size: u64, root: Hash, note: String },
}

/// Recomputes the log from `items` and checks every checkpoint against it.
struct Check<'a> {
    verifier: &'a NoteVerifier,
    origin: &'a str,
    size: u64,
    frontier: Vec<Hash>,
    checkpoints: u64,
    /// The last checkpoint's size: a bad root is somewhere after it.
    verified_to: u64,
}

impl Check<'_> {
    /// Takes the next entry or checkpoint; returns the tree nodes an entry completed, for
    /// comparison with the stored ones.
    fn item(&mut self, item: Item) -> Result<Vec<(regain_merkle::NodeId, Hash)>, String> {
        match item {
            Item::Entry { seq, text, leaf } => {
                if seq != self.size {
                    return Err(format!("entry {}: missing (the next entry found is {seq})", self.size));
                }
                let computed = leaf_hash(text.as_bytes());
                if leaf.is_some_and(|stored| stored != computed) {
                    return Err(format!("entry {seq}: its text does not hash to its recorded leaf hash"));
                }
                let next = append(self.size, &self.frontier, &[computed]).map_err(|e| e.to_string())?;
                self.frontier = next.frontier;
                self.size = next.size;
                Ok(next.nodes)
            }
            Item::Checkpoint { size, root, note } => {
                let body = open_note(&note, self.verifier).map_err(|e| format!("checkpoint {size}: signature: {e}"))?;
                let signed = Checkpoint::parse_body(&body).map_err(|e| format!("checkpoint {size}: {e}"))?;
                if signed.size != size || signed.root != root || signed.origin != self.origin {
                    return Err(format!("checkpoint {size}: the signed note says something else than the record"));
                }
                if size != self.size {
                    return Err(format!("checkpoint {size}: entries up to {} found before it", self.size));
                }
                if root_from_frontier(&self.frontier) != root {
                    return Err(format!(
                        "checkpoint {size}: its root does not match the entries; an entry from {} to {} was changed",
                        self.verified_to,
                        size.saturating_sub(1)
                    ));
                }
                self.checkpoints += 1;
                self.verified_to = size;
                Ok(Vec::new())
            }
        }
    }
}

fn report(result: Result<(), String>, check: &Check<'_>) -> ExitCode {
    match result {
        Ok(()) => {
            println!(
                "audit log verified: {} entries, {} checkpoints, root {}",
                check.size,
                check.checkpoints,
                B64.encode(root_from_frontier(&check.frontier))
            );
            ExitCode::SUCCESS
        }
        Err(problem) => {
            println!("audit log does NOT verify: {problem}");
            ExitCode::from(2)
        }
    }
}

async fn verify(config: &Config, args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    if let Some(file) = &args.file {
        return verify_file(file, args.key.as_deref());
    }
    let ctx = Context::open(config, Schema::RequireCurrent).await?;
    let verifier = match &args.key {
        Some(key) => NoteVerifier::parse(key).context("--key")?,
        // The log's own key, or a clear refusal: never a stand-in that would fail every
        // signature and look like tampering.
        None => identity(config, &config.database.data_dir, ctx.state.store.as_ref())
            .await
            .context("no --key given and the log's signing key is not available here")?
            .verifier()
            .map_err(anyhow::Error::msg)?,
    };
    let origin = verifier.name().to_owned();
    let mut check =
        Check { verifier: &verifier, origin: &origin, size: 0, frontier: Vec::new(), checkpoints: 0, verified_to: 0 };
    let result = verify_store(ctx.state.store.as_ref(), &mut check).await;
    ctx.backend.close().await;
    Ok(report(result, &check))
}

/// Walks the database's entries and checkpoints in log order.
async fn verify_store(store: &dyn Store, check: &mut Check<'_>) -> Result<(), String> {
    let mut checkpoints = std::collections::VecDeque::new();
    let mut next_checkpoint_from = 1;
    let mut seq = 0;
    loop {
        refill(store, &mut checkpoints, &mut next_checkpoint_from).await?;
        let entries = store.audit_entries(seq, PAGE).await.map_err(|e| e.to_string())?;
        let ids: Vec<regain_store::NodeId> =
            entries.iter().filter_map(|e| e.seq).map(|s| regain_store::NodeId { level: 0, index: s }).collect();
        let leaves = store.audit_nodes(&ids).await.map_err(|e| e.to_string())?;
        if entries.is_empty() {
            break;
        }
        let mut computed = Vec::new();
        for entry in entries {
            let s = entry.seq.unwrap_or(u64::MAX);
            let leaf = leaves.get(&regain_store::NodeId { level: 0, index: s }).copied();
            computed.extend(check.item(Item::Entry { seq: s, leaf, text: entry.entry })?);
            seq = s + 1;
            while checkpoints.front().is_some_and(|c| c.size == check.size) {
                if let Some(c) = checkpoints.pop_front() {
                    check.item(Item::Checkpoint { size: c.size, root: c.root, note: c.note })?;
                }
                refill(store, &mut checkpoints, &mut next_checkpoint_from).await?;
            }
        }
        // Every stored hash above the leaves must be what the entries give: proofs are built
        // from them.
        let ids: Vec<regain_store::NodeId> = computed.iter().map(|(id, _)| *id).collect();
        let stored = store.audit_nodes(&ids).await.map_err(|e| e.to_string())?;
        for (id, hash) in &computed {
            if stored.get(id).is_some_and(|s| s != hash) {
                return Err(format!(
                    "the stored hash of leaves {} to {} does not match the entries",
                    id.index << id.level,
                    ((id.index + 1) << id.level) - 1
                ));
            }
        }
    }
    if let Some(c) = checkpoints.front() {
        return Err(format!("checkpoint {}: covers entries the log does not have (it has {})", c.size, check.size));
    }
    Ok(())
}

/// Reads the next page of checkpoints once the ones in hand are used up.
async fn refill(
    store: &dyn Store,
    checkpoints: &mut std::collections::VecDeque<regain_store::StoredCheckpoint>,
    next_from: &mut u64,
) -> Result<(), String> {
    if checkpoints.is_empty() {
        let page = store.checkpoints(*next_from, PAGE).await.map_err(|e| e.to_string())?;
        if let Some(last) = page.last() {
            *next_from = last.size + 1;
        }
        checkpoints.extend(page);
    }
    Ok(())
}

fn verify_file(path: &Path, key: Option<&str>) -> anyhow::Result<ExitCode> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut lines = std::io::BufReader::new(file).lines();
    let header: Value = match lines.next() {
        Some(line) => serde_json::from_str(&line?).context("the first line is not the export header")?,
        None => bail!("{} is empty", path.display()),
    };
    if header["format"] != "regain-audit-export/1" {
        bail!("{} is not a Regain audit export (format regain-audit-export/1)", path.display());
    }
    let vkey = match key {
        Some(key) => key.to_owned(),
        None => {
            eprintln!("note: checking against the key the file names; pass --key to check against a key you trust");
            header["verifier_key"].as_str().unwrap_or_default().to_owned()
        }
    };
    let verifier = NoteVerifier::parse(&vkey).context("verifier key")?;
    let origin = verifier.name().to_owned();
    let mut check =
        Check { verifier: &verifier, origin: &origin, size: 0, frontier: Vec::new(), checkpoints: 0, verified_to: 0 };
    let mut result = Ok(());
    for (n, line) in lines.enumerate() {
        let line = line?;
        let item = match parse_item(&line) {
            Ok(item) => item,
            Err(e) => {
                result = Err(format!("line {}: {e}", n + 2));
                break;
            }
        };
        if let Err(e) = check.item(item) {
            result = Err(e);
            break;
        }
    }
    Ok(report(result, &check))
}

fn b64_hash(value: &Value) -> Result<Hash, String> {
    let bytes = B64.decode(value.as_str().ok_or("a hash is missing")?).map_err(|_| "a hash is not base64")?;
    bytes.try_into().map_err(|_| "a hash is not 32 bytes".to_owned())
}

fn parse_item(line: &str) -> Result<Item, String> {
    let v: Value = serde_json::from_str(line).map_err(|_| "not JSON".to_owned())?;
    if let Some(e) = v.get("entry") {
        Ok(Item::Entry {
            seq: e["seq"].as_u64().ok_or("entry without seq")?,
            text: e["text"].as_str().ok_or("entry without text")?.to_owned(),
            leaf: Some(b64_hash(&e["leaf_hash"])?),
        })
    } else if let Some(c) = v.get("checkpoint") {
        Ok(Item::Checkpoint {
            size: c["size"].as_u64().ok_or("checkpoint without size")?,
            root: b64_hash(&c["root"])?,
            note: c["note"].as_str().ok_or("checkpoint without note")?.to_owned(),
        })
    } else {
        Err("neither an entry nor a checkpoint".to_owned())
    }
}

async fn export(config: &Config, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let ctx = Context::open(config, Schema::RequireCurrent).await?;
    let store = ctx.state.store.clone();
    let file = std::fs::File::create(&args.file).with_context(|| format!("creating {}", args.file.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let header = json!({
        "format": "regain-audit-export/1",
        "origin": ctx.state.audit.origin(),
        "verifier_key": ctx.state.audit.verifier_key(),
        "leaf_hash": "SHA-256(0x00 || entry text, UTF-8)",
        "node_hash": "SHA-256(0x01 || left || right), RFC 9162",
    });
    writeln!(out, "{header}")?;
    let checkpoints = store.checkpoints(1, u32::MAX).await?;
    let mut pending = checkpoints.iter().peekable();
    let (mut seq, mut entries) = (0u64, 0u64);
    loop {
        let page = store.audit_entries(seq, PAGE).await?;
        if page.is_empty() {
            break;
        }
        for entry in page {
            let s = entry.seq.unwrap_or(seq);
            let line = json!({"entry": {"seq": s, "text": entry.entry, "leaf_hash": B64.encode(leaf_hash(entry.entry.as_bytes()))}});
            writeln!(out, "{line}")?;
            seq = s + 1;
            entries += 1;
            while let Some(c) = pending.next_if(|c| c.size == seq) {
                writeln!(
                    out,
                    "{}",
                    json!({"checkpoint": {"size": c.size, "root": B64.encode(c.root), "note": c.note}})
                )?;
            }
        }
    }
    out.flush()?;
    ctx.backend.close().await;
    eprintln!("exported {entries} entries and {} checkpoints to {}", checkpoints.len(), args.file.display());
    Ok(ExitCode::SUCCESS)
}

async fn checkpoint(config: &Config) -> anyhow::Result<ExitCode> {
    // Signing needs the log's real key: open as `serve` does, never with a stand-in.
    let ctx = Context::open(config, Schema::Migrate).await?;
    let published = regain_server::audit::sequence_all(&ctx.state).await?;
    match ctx.state.store.latest_checkpoint().await? {
        Some(latest) => println!(
            "{published} checkpoint(s) signed; the log has {} entries, root {}",
            latest.size,
            B64.encode(latest.root)
        ),
        None => println!("the audit log is empty"),
    }
    ctx.backend.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn prove(config: &Config, args: &ProveArgs) -> anyhow::Result<ExitCode> {
    let ctx = Context::open(config, Schema::RequireCurrent).await?;
    let store = ctx.state.store.clone();
    let checkpoint = match args.size {
        Some(size) => store.checkpoint(size).await?.with_context(|| format!("no checkpoint of size {size}"))?,
        None => store.latest_checkpoint().await?.context("the audit log has no checkpoint yet")?,
    };
    let entry = store.audit_entry(args.seq).await?.with_context(|| format!("no audit entry {}", args.seq))?;
    if args.seq >= checkpoint.size {
        bail!("entry {} is not in the tree of size {}", args.seq, checkpoint.size);
    }
    let plan = inclusion_proof_plan(args.seq, checkpoint.size)?;
    let nodes = store.audit_nodes(&plan.nodes()).await?;
    let proof = plan.assemble(&nodes)?;
    let leaf = leaf_hash(entry.entry.as_bytes());
    verify_inclusion(&leaf, args.seq, checkpoint.size, &proof, &checkpoint.root)
        .context("the proof does not verify")?;
    let out = json!({
        "seq": args.seq,
        "entry": entry.entry,
        "leaf_hash": B64.encode(leaf),
        "tree_size": checkpoint.size,
        "proof": proof.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
        "checkpoint": checkpoint.note,
        "verifier_key": ctx.state.audit.verifier_key(),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    ctx.backend.close().await;
    Ok(ExitCode::SUCCESS)
}
