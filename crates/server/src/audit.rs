//! The audit log's signing key and sequencer.
//!
//! Entries are written by every change, in its transaction. The sequencer places them in the
//! Merkle log in batches and publishes a checkpoint signed with the log's Ed25519 key (C2SP
//! signed note) — every `audit_sequence_interval_ms` while entries arrive, so at least once a
//! second by default. Any number of processes may run it: the store lets one at a time through.

use std::sync::Arc;

use regain_merkle::note::{Checkpoint, NoteSigner, NoteVerifier};
use regain_store::{CheckpointSigner, StoreError};

use crate::state::AppState;

/// Entries placed per checkpoint at most; a larger backlog takes several. A tick (500 ms) of
/// a busy desk fits in one: placing costs a read, hashing and a few tile rows per batch, so
/// fewer, larger batches mean fewer commits.
pub const SEQUENCE_BATCH_MAX: u32 = 10_000;

/// The log's identity: its origin line and its signing key.
pub struct AuditLog {
    origin: String,
    signer: NoteSigner,
    verifier_key: String,
}

impl AuditLog {
    /// `origin` names the log in every checkpoint (e.g. `desk.example.com/regain-audit`);
    /// `seed` is the Ed25519 private key.
    pub fn new(origin: &str, seed: &[u8; 32]) -> Result<Self, String> {
        let signer = NoteSigner::new(origin, seed).map_err(|e| format!("audit signing key: {e}"))?;
        let verifier_key = signer.verifier_key();
        Ok(Self { origin: origin.to_owned(), signer, verifier_key })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// `<name>+<key id>+<public key>`: what a verifier needs to check checkpoints.
    pub fn verifier_key(&self) -> &str {
        &self.verifier_key
    }

    pub fn verifier(&self) -> Result<NoteVerifier, String> {
        NoteVerifier::parse(&self.verifier_key).map_err(|e| e.to_string())
    }

    /// Whether this key signed `note` (a checkpoint of this log): used at start-up to refuse a
    /// key that does not belong to the log it is about to extend.
    pub fn signed(&self, note: &str) -> bool {
        self.verifier().is_ok_and(|v| regain_merkle::note::open(note, &v).is_ok())
    }
}

impl CheckpointSigner for AuditLog {
    fn sign(&self, size: u64, root: &[u8; 32]) -> Result<String, String> {
        let body = Checkpoint { origin: self.origin.clone(), size, root: *root, extensions: Vec::new() }.body();
        self.signer.sign(&body).map_err(|e| e.to_string())
    }
}

/// Places everything waiting, batch by batch; returns how many checkpoints were published.
pub async fn sequence_all(state: &AppState) -> Result<usize, StoreError> {
    let mut published = 0;
    while state.store.sequence_audit(SEQUENCE_BATCH_MAX, state.now(), state.audit.as_ref()).await?.is_some() {
        published += 1;
    }
    Ok(published)
}

pub fn spawn_sequencer(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let interval_ms = state.config.audit_sequence_interval_ms;
    crate::periodic::spawn_every(interval_ms, state, |state| async move {
        if let Err(e) = sequence_all(&state).await {
            tracing::warn!(error = %e, "audit sequencing failed; will retry");
        }
    })
}

/// A log identity with a fresh key that is kept nowhere: for tests, benchmarks, and commands
/// that never sign.
pub fn ephemeral(origin: &str) -> Result<Arc<AuditLog>, String> {
    let (signer, _seed) = NoteSigner::generate(origin).map_err(|e| e.to_string())?;
    let verifier_key = signer.verifier_key();
    Ok(Arc::new(AuditLog { origin: origin.to_owned(), signer, verifier_key }))
}
