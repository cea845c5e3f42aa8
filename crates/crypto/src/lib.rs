//! Personal data at rest (SECURITY.md L5; issue 3 items 5–7): envelope encryption and blind
//! indexes, with no I/O.
//!
//! - Every data subject (a customer, a case) has its own random [`DataKey`]. Its personal data
//!   is sealed with XChaCha20-Poly1305 under that key, bound by associated data to where it is
//!   stored, so a sealed value copied to another row or field does not open.
//! - Data keys are stored only *wrapped* by the [`MasterKey`], which lives outside the
//!   database (configuration or a key file). Destroying a subject's wrapped key erases
//!   everything sealed under it, wherever copies of the ciphertext remain (the audit log).
//! - Lookups use a keyed blind index ([`IndexKey::blind`]): HMAC-SHA256 of the normalized value,
//!   per tenant and field, so equal values match without the database holding either.
//! - The [`Keyring`] ties a master key to a database: a key check proves at start-up that the
//!   configured key is the one the data was written with, and the index key is kept wrapped.
//!
//! Key material is zeroed on drop and never printed: `Debug` shows only a key's id.

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

/// Every key is 32 bytes.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// The first byte of every sealed value: the format, so it can change without guessing.
const VERSION: u8 = 1;
/// What the key check seals: opening it proves the master key.
const CHECK_PLAINTEXT: &[u8] = b"regain keyring check v1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("a key must be base64 (or hex) of {KEY_LEN} bytes")]
    KeyText,
    /// Wrong key, altered ciphertext or associated data that does not match: the AEAD cannot
    /// tell these apart, and neither should a caller.
    #[error("does not decrypt: wrong key or altered data")]
    Open,
    #[error("not a sealed value")]
    Malformed,
}

pub type CryptoResult<T> = Result<T, CryptoError>;

fn random_key() -> Zeroizing<[u8; KEY_LEN]> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    OsRng.fill_bytes(key.as_mut());
    key
}

fn seal_with(key: &[u8; KEY_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    // Encryption fails only when the plaintext exceeds the cipher's limit (≈ 256 GiB).
    let ciphertext = cipher.encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad }).unwrap_or_default();
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    out
}

fn open_with(key: &[u8; KEY_LEN], aad: &[u8], sealed: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>> {
    if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != VERSION {
        return Err(CryptoError::Malformed);
    }
    let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad })
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Open)
}

fn hmac(key: &[u8; KEY_LEN], parts: &[&[u8]]) -> [u8; 32] {
    #[allow(clippy::expect_used)] // HMAC takes a key of any length
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    for part in parts {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") never collide.
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The key that wraps every data key. Lives outside the database.
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl MasterKey {
    pub fn generate() -> Self {
        Self(random_key())
    }

    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let mut bytes = bytes;
        let key = Self(Zeroizing::new(bytes));
        bytes.zeroize();
        key
    }

    /// Reads base64 (standard or URL-safe) or hex of 32 bytes; surrounding white space is ignored.
    pub fn from_text(text: &str) -> CryptoResult<Self> {
        let text = text.trim();
        // 64 hex digits are also valid base64 (of 48 bytes), so take whichever reading gives 32.
        let readings = [B64.decode(text).ok(), B64URL.decode(text.trim_end_matches('=')).ok(), decode_hex(text).ok()];
        let bytes = readings
            .into_iter()
            .flatten()
            .map(Zeroizing::new)
            .find(|b| b.len() == KEY_LEN)
            .ok_or(CryptoError::KeyText)?;
        let array: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| CryptoError::KeyText)?;
        Ok(Self::from_bytes(array))
    }

    /// Base64 of the key, for a key file.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(B64.encode(self.0.as_ref()))
    }

    /// A short public name for the key (not derived in a way that helps guess it): which key
    /// wrapped a record, shown in errors and `regain keys status`.
    pub fn id(&self) -> String {
        let digest = hmac(&self.0, &[b"regain master key id v1"]);
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Wraps a data key for storage; `context` (the subject's id) is bound to it.
    pub fn wrap(&self, key: &DataKey, context: &str) -> Vec<u8> {
        seal_with(&self.0, &wrap_aad(context), key.0.as_ref())
    }

    pub fn unwrap(&self, wrapped: &[u8], context: &str) -> CryptoResult<DataKey> {
        let bytes = open_with(&self.0, &wrap_aad(context), wrapped)?;
        let array: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| CryptoError::Malformed)?;
        Ok(DataKey::from_bytes(array))
    }

    /// Re-wraps a wrapped key under `next` (master key rotation).
    pub fn rewrap(&self, next: &MasterKey, wrapped: &[u8], context: &str) -> CryptoResult<Vec<u8>> {
        Ok(next.wrap(&self.unwrap(wrapped, context)?, context))
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id())
    }
}

fn wrap_aad(context: &str) -> Vec<u8> {
    [b"regain data key v1\0".as_slice(), context.as_bytes()].concat()
}

fn decode_hex(text: &str) -> Result<Vec<u8>, ()> {
    if !text.len().is_multiple_of(2) {
        return Err(());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()).ok_or(()))
        .collect()
}

/// One subject's key: everything personal about it is sealed under this key.
pub struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl DataKey {
    pub fn generate() -> Self {
        Self(random_key())
    }

    fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let mut bytes = bytes;
        let key = Self(Zeroizing::new(bytes));
        bytes.zeroize();
        key
    }

    /// Seals `plaintext`; `aad` names where it is stored (table, field, row) and must be given
    /// again to open it.
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> Vec<u8> {
        seal_with(&self.0, aad.as_bytes(), plaintext)
    }

    pub fn open(&self, aad: &str, sealed: &[u8]) -> CryptoResult<Zeroizing<Vec<u8>>> {
        open_with(&self.0, aad.as_bytes(), sealed)
    }

    /// [`DataKey::seal`] as URL-safe base64 text, for text columns and JSON.
    pub fn seal_text(&self, aad: &str, plaintext: &str) -> String {
        B64URL.encode(self.seal(aad, plaintext.as_bytes()))
    }

    pub fn open_text(&self, aad: &str, sealed: &str) -> CryptoResult<String> {
        let bytes = B64URL.decode(sealed).map_err(|_| CryptoError::Malformed)?;
        let plain = self.open(aad, &bytes)?;
        String::from_utf8(plain.to_vec()).map_err(|_| CryptoError::Malformed)
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(…)")
    }
}

/// The key of the blind indexes.
pub struct IndexKey(Zeroizing<[u8; KEY_LEN]>);

impl IndexKey {
    /// The blind index of a normalized value: HMAC-SHA256 over the tenant, the field and the
    /// value, as URL-safe base64. Per tenant and field, so equal values in two tenants or two
    /// fields do not correlate.
    pub fn blind(&self, tenant: &str, field: &str, normalized: &str) -> String {
        B64URL.encode(hmac(
            &self.0,
            &[b"regain blind index v1", tenant.as_bytes(), field.as_bytes(), normalized.as_bytes()],
        ))
    }
}

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexKey(…)")
    }
}

/// What the database keeps about its keys: which master key, the proof of it, and the index
/// key wrapped by it. Nothing here opens anything without the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyringRecord {
    pub master_key_id: String,
    pub check: Vec<u8>,
    pub index_key: Vec<u8>,
}

/// Why a master key does not open a database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnlockError {
    #[error(
        "the master key {given} is not the key this database was written with ({expected}); \
         refusing to start rather than write data no one could read"
    )]
    WrongKey { given: String, expected: String },
    #[error("the stored keyring does not decrypt: {0}")]
    Corrupt(CryptoError),
}

/// A master key proven to belong to the database, with the index key it unwrapped.
#[derive(Debug)]
pub struct Keyring {
    master: MasterKey,
    index: IndexKey,
}

const INDEX_KEY_CONTEXT: &str = "keyring:index";

impl Keyring {
    /// A new keyring for an empty database: a fresh index key wrapped by `master`.
    pub fn create(master: MasterKey) -> (Self, KeyringRecord) {
        let index = IndexKey(random_key());
        let record = KeyringRecord {
            master_key_id: master.id(),
            check: seal_with(&master.0, b"regain keyring", CHECK_PLAINTEXT),
            index_key: seal_with(&master.0, &wrap_aad(INDEX_KEY_CONTEXT), index.0.as_ref()),
        };
        (Self { master, index }, record)
    }

    /// Proves `master` against the stored check and unwraps the index key.
    pub fn unlock(master: MasterKey, record: &KeyringRecord) -> Result<Self, UnlockError> {
        match open_with(&master.0, b"regain keyring", &record.check) {
            Ok(plain) if subtle::ConstantTimeEq::ct_eq(plain.as_slice(), CHECK_PLAINTEXT).into() => {}
            Ok(_) | Err(CryptoError::Open) => {
                return Err(UnlockError::WrongKey { given: master.id(), expected: record.master_key_id.clone() })
            }
            Err(e) => return Err(UnlockError::Corrupt(e)),
        }
        let bytes =
            open_with(&master.0, &wrap_aad(INDEX_KEY_CONTEXT), &record.index_key).map_err(UnlockError::Corrupt)?;
        let array: [u8; KEY_LEN] =
            bytes.as_slice().try_into().map_err(|_| UnlockError::Corrupt(CryptoError::Malformed))?;
        Ok(Self { master, index: IndexKey(Zeroizing::new(array)) })
    }

    /// The same keyring under `next`: the record to store once every data key is re-wrapped
    /// with [`Keyring::rewrap`].
    pub fn rotate(&self, next: MasterKey) -> (Self, KeyringRecord) {
        let record = KeyringRecord {
            master_key_id: next.id(),
            check: seal_with(&next.0, b"regain keyring", CHECK_PLAINTEXT),
            index_key: seal_with(&next.0, &wrap_aad(INDEX_KEY_CONTEXT), self.index.0.as_ref()),
        };
        (Self { master: next, index: IndexKey(self.index.0.clone()) }, record)
    }

    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    pub fn into_master(self) -> MasterKey {
        self.master
    }

    pub fn index(&self) -> &IndexKey {
        &self.index
    }

    /// A new data key for `subject`, with its wrapped form to store.
    pub fn new_data_key(&self, subject: &str) -> (DataKey, Vec<u8>) {
        let key = DataKey::generate();
        let wrapped = self.master.wrap(&key, subject);
        (key, wrapped)
    }

    pub fn data_key(&self, subject: &str, wrapped: &[u8]) -> CryptoResult<DataKey> {
        self.master.unwrap(wrapped, subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_text_opens_only_with_its_key_and_place() {
        let key = DataKey::generate();
        let sealed = key.seal_text("customers.full_name:1", "Ada Lovelace");
        assert_eq!(key.open_text("customers.full_name:1", &sealed).unwrap(), "Ada Lovelace");
        assert!(!sealed.contains("Ada"));
        assert_eq!(key.open_text("customers.full_name:2", &sealed), Err(CryptoError::Open));
        assert_eq!(DataKey::generate().open_text("customers.full_name:1", &sealed), Err(CryptoError::Open));
        // Any flipped bit is refused.
        let mut bytes = B64URL.decode(&sealed).unwrap();
        for i in 0..bytes.len() {
            bytes[i] ^= 0x01;
            assert!(key.open("customers.full_name:1", &bytes).is_err(), "bit in byte {i}");
            bytes[i] ^= 0x01;
        }
        assert_eq!(key.open_text("x", "not base64!"), Err(CryptoError::Malformed));
        // Two seals of one value differ (random nonces).
        assert_ne!(key.seal_text("a", "same"), key.seal_text("a", "same"));
    }

    #[test]
    fn data_keys_wrap_unwrap_and_rotate() {
        let (keyring, record) = Keyring::create(MasterKey::generate());
        let (key, wrapped) = keyring.new_data_key("customer:1");
        let sealed = key.seal_text("f", "secret");
        let again = keyring.data_key("customer:1", &wrapped).unwrap();
        assert_eq!(again.open_text("f", &sealed).unwrap(), "secret");
        assert!(keyring.data_key("customer:2", &wrapped).is_err(), "bound to its subject");

        let (rotated, next_record) = keyring.rotate(MasterKey::generate());
        let rewrapped = keyring.master().rewrap(rotated.master(), &wrapped, "customer:1").unwrap();
        assert_eq!(rotated.data_key("customer:1", &rewrapped).unwrap().open_text("f", &sealed).unwrap(), "secret");
        assert!(keyring.data_key("customer:1", &rewrapped).is_err(), "the old master key no longer opens it");
        // Blind indexes survive rotation: lookups keep working without recomputing them.
        assert_eq!(rotated.index().blind("t", "email", "a@b.c"), keyring.index().blind("t", "email", "a@b.c"));
        assert_ne!(record.master_key_id, next_record.master_key_id);
    }

    #[test]
    fn a_wrong_master_key_is_refused_by_name() {
        let master = MasterKey::generate();
        let text = master.to_text();
        let (_, record) = Keyring::create(master);
        let err = Keyring::unlock(MasterKey::generate(), &record).unwrap_err();
        assert!(matches!(err, UnlockError::WrongKey { ref expected, .. } if *expected == record.master_key_id));
        let right = Keyring::unlock(MasterKey::from_text(&text).unwrap(), &record).unwrap();
        assert_eq!(right.master().id(), record.master_key_id);
    }

    #[test]
    fn key_text_is_base64_or_hex_of_32_bytes() {
        let hex = "00".repeat(32);
        assert!(MasterKey::from_text(&hex).is_ok());
        assert!(MasterKey::from_text(&B64.encode([7u8; 32])).is_ok());
        assert!(MasterKey::from_text(&format!(" {}\n", B64URL.encode([7u8; 32]))).is_ok());
        assert_eq!(MasterKey::from_text("short").unwrap_err(), CryptoError::KeyText);
        assert!(MasterKey::from_text(&B64.encode([7u8; 31])).is_err());
        let key = MasterKey::from_text(&hex).unwrap();
        assert!(!format!("{key:?}").contains(&hex));
    }

    #[test]
    fn blind_indexes_separate_tenants_and_fields() {
        let (keyring, _) = Keyring::create(MasterKey::generate());
        let i = keyring.index();
        assert_eq!(i.blind("t1", "email", "a@b.c"), i.blind("t1", "email", "a@b.c"));
        assert_ne!(i.blind("t1", "email", "a@b.c"), i.blind("t2", "email", "a@b.c"));
        assert_ne!(i.blind("t1", "email", "a@b.c"), i.blind("t1", "username", "a@b.c"));
        assert_ne!(i.blind("t1", "ab", "c"), i.blind("t1", "a", "bc"));
    }
}
