//! Ed25519 signed notes (C2SP signed-note, signature type 0x01).

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::NoteError;

/// Signature type byte of Ed25519 in the signed-note registry.
const ED25519: u8 = 0x01;
/// Prefix of every signature line: em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";
/// Bound on signature lines parsed, so a huge note cannot make us loop for long.
/// The spec requires accepting at least 16.
const MAX_SIGNATURES: usize = 100;

/// Key names must be non-empty and contain neither Unicode spaces nor '+', because
/// '+' separates the fields of a verifier key and a space the fields of a
/// signature line.
fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains('+') || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(NoteError::BadKey(format!("invalid key name {name:?}")));
    }
    Ok(())
}

/// Key id: the first 4 bytes of SHA-256(name || "\n" || 0x01 || public key).
/// Binding the name into the id keeps two keys of one name (rotation) apart.
fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', ED25519])
        .chain_update(key.as_bytes())
        .finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A body we sign or accept: non-empty, newline-terminated, no control characters
/// besides newline, and no line starting with an em dash — such a line could be
/// mistaken for a signature line by a reader that splits differently.
fn check_body(body: &str) -> Result<(), NoteError> {
    let malformed = |why: &str| Err(NoteError::Malformed(format!("note body: {why}")));
    if body.is_empty() {
        return malformed("empty");
    }
    if !body.ends_with('\n') {
        return malformed("must end with a newline");
    }
    if body.chars().any(|c| c < ' ' && c != '\n') {
        return malformed("control character");
    }
    if body.split('\n').any(|line| line.starts_with('\u{2014}')) {
        return malformed("line starts with an em dash");
    }
    Ok(())
}

/// Signs note bodies with one Ed25519 key under one key name.
pub struct NoteSigner {
    name: String,
    key: SigningKey,
    key_id: [u8; 4],
}

// Written by hand so the secret key can never end up in a log line.
impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner").field("name", &self.name).field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// A signer for key `name` from a 32-byte Ed25519 seed (the secret to keep).
    pub fn new(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        check_name(name)?;
        let key = SigningKey::from_bytes(seed);
        let key_id = key_id(name, &key.verifying_key());
        Ok(NoteSigner { name: name.to_owned(), key, key_id })
    }

    /// A signer with a fresh random key; returns the seed so the caller can store it.
    pub fn generate(name: &str) -> Result<(Self, [u8; 32]), NoteError> {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        Ok((Self::new(name, &seed)?, seed))
    }

    /// The key name signatures are made under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key id that prefixes every signature.
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// Signs `body` and returns the full signed note: body, blank line, signature line.
    ///
    /// Errors if the body could not be opened again (see [`open`]'s rules): empty,
    /// not newline-terminated, a control character, or a line starting with an em dash.
    pub fn sign(&self, body: &str) -> Result<String, NoteError> {
        check_body(body)?;
        let signature = self.key.sign(body.as_bytes());
        let mut blob = Vec::with_capacity(4 + Signature::BYTE_SIZE);
        blob.extend_from_slice(&self.key_id);
        blob.extend_from_slice(&signature.to_bytes());
        Ok(format!("{body}\n{SIG_PREFIX}{} {}\n", self.name, STANDARD.encode(blob)))
    }

    /// The public verifier key to publish: `<name>+<8 hex key id>+<base64(0x01 || public key)>`.
    pub fn verifier_key(&self) -> String {
        let mut typed = vec![ED25519];
        typed.extend_from_slice(self.key.verifying_key().as_bytes());
        let id: String = self.key_id.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}+{}+{}", self.name, id, STANDARD.encode(typed))
    }

    /// The verifier for this signer's key.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier { name: self.name.clone(), key_id: self.key_id, key: self.key.verifying_key() }
    }
}

/// A trusted Ed25519 note key, parsed from its verifier key string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: [u8; 4],
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses `<name>+<8 lowercase hex key id>+<base64(0x01 || 32-byte key)>`.
    ///
    /// The key id must match the one computed from the name and key: a mismatch
    /// means a typo or tampering in configuration, better caught here than as
    /// "no valid signature" at every open.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let bad = |why: &str| NoteError::BadKey(format!("verifier key: {why}"));
        // The base64 part may itself contain '+', so split only twice.
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected <name>+<id>+<key>"));
        };
        check_name(name)?;
        let claimed_id = parse_key_id(id_hex).ok_or_else(|| bad("key id is not 8 lowercase hex digits"))?;
        let typed = STANDARD.decode(key_b64).map_err(|_| bad("key is not base64"))?;
        let Some((&ED25519, raw)) = typed.split_first() else {
            return Err(bad("not an Ed25519 (type 0x01) key"));
        };
        let raw: &[u8; 32] = raw.try_into().map_err(|_| bad("Ed25519 key is not 32 bytes"))?;
        let key = VerifyingKey::from_bytes(raw).map_err(|_| bad("not a valid Ed25519 public key"))?;
        if key_id(name, &key) != claimed_id {
            return Err(bad("key id does not match name and key"));
        }
        Ok(NoteVerifier { name: name.to_owned(), key_id: claimed_id, key })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 4-byte key id.
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }
}

fn parse_key_id(hex: &str) -> Option<[u8; 4]> {
    if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok().map(u32::to_be_bytes)
}

/// Opens a signed note: checks its format strictly and returns the body once at
/// least one signature by `verifier` verifies.
///
/// Signature lines by other keys (another name, or the same name with another key
/// id) are ignored, as the spec requires, so witnesses can cosign and keys can
/// rotate. A line that does claim to be by `verifier` but fails to verify makes the
/// whole note [`NoteError::BadSignature`]: it is a forgery or corruption, never
/// something to skip.
pub fn open(note: &str, verifier: &NoteVerifier) -> Result<String, NoteError> {
    let malformed = |why: &str| NoteError::Malformed(format!("signed note: {why}"));
    if note.chars().any(|c| c < ' ' && c != '\n') {
        return Err(malformed("control character"));
    }
    // The body is separated from the signatures by the note's last blank line.
    let split = note.rfind("\n\n").ok_or_else(|| malformed("no blank line before the signatures"))?;
    let (body, sigs) = (&note[..split + 1], &note[split + 2..]);
    let sigs = sigs.strip_suffix('\n').ok_or_else(|| malformed("must end with a signature line"))?;
    check_body(body)?;

    let mut verified = false;
    for (count, line) in sigs.split('\n').enumerate() {
        if count >= MAX_SIGNATURES {
            return Err(malformed("too many signatures"));
        }
        let rest = line.strip_prefix(SIG_PREFIX).ok_or_else(|| malformed("bad signature line"))?;
        let (name, b64) = rest.split_once(' ').ok_or_else(|| malformed("bad signature line"))?;
        check_name(name).map_err(|_| malformed("bad key name in signature line"))?;
        let blob = STANDARD.decode(b64).map_err(|_| malformed("signature is not base64"))?;
        let (id, signature) = match blob.split_first_chunk::<4>() {
            Some((id, signature)) if !signature.is_empty() => (id, signature),
            _ => return Err(malformed("signature too short")),
        };
        if name != verifier.name || *id != verifier.key_id {
            continue;
        }
        let signature = Signature::from_slice(signature).map_err(|_| NoteError::BadSignature)?;
        verifier.key.verify_strict(body.as_bytes(), &signature).map_err(|_| NoteError::BadSignature)?;
        verified = true;
    }
    if !verified {
        return Err(NoteError::NoValidSignature);
    }
    Ok(body.to_owned())
}
