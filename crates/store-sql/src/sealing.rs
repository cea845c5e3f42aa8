//! How personal data is sealed into rows and opened out of them (issue 3 items 5–6), shared by
//! both backends. The store holds the unlocked [`Keyring`]; every value written about a subject
//! is sealed under that subject's data key with associated data naming where it is stored, and
//! every lookup goes through a blind index. A subject whose key was destroyed reads as erased.

use std::sync::{Arc, RwLock};

use regain_core::case::CaseEvent;
use regain_core::customer::Customer;
use regain_core::{CaseId, CustomerId, TenantId};
use regain_crypto::{DataKey, Keyring};
use regain_store::codec::{event_from_json, event_to_json};
use regain_store::{StoreError, StoreResult};
use serde_json::{json, Map, Value};

/// The store's unlocked keyring, shared by its clones; empty until [`Keys::set`].
#[derive(Debug, Clone, Default)]
pub struct Keys(Arc<RwLock<Option<Arc<Keyring>>>>);

impl Keys {
    pub fn get(&self) -> StoreResult<Arc<Keyring>> {
        self.0.read().map_err(|_| StoreError::Other("keyring lock poisoned".into()))?.clone().ok_or_else(|| {
            StoreError::Keyring(
                "personal data is encrypted and no master key has unlocked it: \
                     configure crypto.master_key or restore its key file"
                    .into(),
            )
        })
    }

    pub fn set(&self, keyring: Keyring) -> StoreResult<()> {
        *self.0.write().map_err(|_| StoreError::Other("keyring lock poisoned".into()))? = Some(Arc::new(keyring));
        Ok(())
    }
}

/// Field names of the blind indexes, part of every index value.
pub mod field {
    pub const USERNAME: &str = "username";
    pub const ACCOUNT_NUMBER: &str = "account_number";
    pub const EMAIL: &str = "email";
    pub const PHONE: &str = "phone";
}

/// Normalized forms that lookups compare, so the index of "Ada" and "ada" agree.
pub fn username_norm(username: &str) -> String {
    username.to_lowercase()
}

pub fn blind(keyring: &Keyring, tenant: TenantId, field: &str, normalized: &str) -> String {
    keyring.index().blind(&tenant.to_string(), field, normalized)
}

/// A customer record as its rows hold it.
pub struct SealedCustomer {
    pub wrapped_key: Vec<u8>,
    pub sealed: String,
    pub username_bidx: String,
    pub account_number_bidx: Option<String>,
    /// (sealed address, blind index) per email, in order.
    pub emails: Vec<(String, String)>,
    /// (sealed number, blind index) per phone, in order.
    pub phones: Vec<(String, String)>,
}

fn customer_aad(id: CustomerId) -> String {
    format!("customers.sealed:{id}")
}

fn email_aad(id: CustomerId, position: usize) -> String {
    format!("customer_emails:{id}:{position}")
}

fn phone_aad(id: CustomerId, position: usize) -> String {
    format!("customer_phones:{id}:{position}")
}

pub fn seal_customer(keyring: &Keyring, c: &Customer) -> SealedCustomer {
    let (key, wrapped_key) = keyring.new_data_key(&c.id.to_string());
    let sealed = key.seal_text(
        &customer_aad(c.id),
        &json!({"username": c.username, "account_number": c.account_number, "full_name": c.full_name}).to_string(),
    );
    SealedCustomer {
        wrapped_key,
        sealed,
        username_bidx: blind(keyring, c.tenant_id, field::USERNAME, &username_norm(&c.username)),
        account_number_bidx: c.account_number.as_deref().map(|a| blind(keyring, c.tenant_id, field::ACCOUNT_NUMBER, a)),
        emails: c
            .emails
            .iter()
            .enumerate()
            .map(|(i, e)| {
                (
                    key.seal_text(&email_aad(c.id, i), e.address.as_str()),
                    blind(keyring, c.tenant_id, field::EMAIL, &e.address.normalized()),
                )
            })
            .collect(),
        phones: c
            .phones
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    key.seal_text(&phone_aad(c.id, i), p.number.as_str()),
                    blind(keyring, c.tenant_id, field::PHONE, p.number.as_str()),
                )
            })
            .collect(),
    }
}

/// One contact point of a customer, sealed for its row at `position` of its kind's table,
/// with its blind index.
pub fn seal_contact(
    keyring: &Keyring,
    key: &DataKey,
    tenant: TenantId,
    customer: CustomerId,
    kind: regain_store::ContactKind,
    position: usize,
    value: &str,
) -> StoreResult<(String, String)> {
    use regain_store::ContactKind;
    Ok(match kind {
        ContactKind::Email => {
            let address = regain_core::contact::EmailAddress::parse("email", value)
                .map_err(|e| StoreError::Corrupt(format!("a contact change's email: {e}")))?;
            (
                key.seal_text(&email_aad(customer, position), value),
                blind(keyring, tenant, field::EMAIL, &address.normalized()),
            )
        }
        ContactKind::Phone => {
            (key.seal_text(&phone_aad(customer, position), value), blind(keyring, tenant, field::PHONE, value))
        }
    })
}

/// A stored contact point of `kind` at `position`, opened.
pub fn open_contact(
    key: &DataKey,
    customer: CustomerId,
    kind: regain_store::ContactKind,
    position: usize,
    sealed: &str,
) -> StoreResult<String> {
    let (aad, table) = match kind {
        regain_store::ContactKind::Email => (email_aad(customer, position), "customer_emails"),
        regain_store::ContactKind::Phone => (phone_aad(customer, position), "customer_phones"),
    };
    key.open_text(&aad, sealed).map_err(|_| undecryptable(table))
}

/// Where a contact change's sealed values are bound: its new contact, and the ones it replaced.
pub fn contact_change_aad(id: &str, part: &str) -> String {
    format!("contact_changes:{id}:{part}")
}

/// The plaintext of a customer's sealed columns.
pub struct OpenedCustomer {
    pub username: String,
    pub account_number: Option<String>,
    pub full_name: String,
    key: DataKey,
    id: CustomerId,
}

impl OpenedCustomer {
    pub fn email(&self, position: usize, sealed: &str) -> StoreResult<String> {
        self.key.open_text(&email_aad(self.id, position), sealed).map_err(|_| undecryptable("customer_emails"))
    }

    pub fn phone(&self, position: usize, sealed: &str) -> StoreResult<String> {
        self.key.open_text(&phone_aad(self.id, position), sealed).map_err(|_| undecryptable("customer_phones"))
    }
}

pub fn undecryptable(what: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} does not decrypt under its key"))
}

pub fn open_customer(
    keyring: &Keyring,
    id: CustomerId,
    wrapped_key: Option<&[u8]>,
    sealed: &str,
) -> StoreResult<OpenedCustomer> {
    let wrapped = wrapped_key.ok_or_else(|| StoreError::Corrupt("customers: the record has no data key".into()))?;
    let key = keyring.data_key(&id.to_string(), wrapped).map_err(|_| undecryptable("data_keys"))?;
    let text = key.open_text(&customer_aad(id), sealed).map_err(|_| undecryptable("customers.sealed"))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|_| StoreError::Corrupt("customers.sealed does not parse".into()))?;
    let string = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(OpenedCustomer {
        username: string("username").ok_or_else(|| StoreError::Corrupt("customers.sealed: no username".into()))?,
        account_number: string("account_number"),
        full_name: string("full_name").ok_or_else(|| StoreError::Corrupt("customers.sealed: no full_name".into()))?,
        key,
        id,
    })
}

/// The fields of case events that hold free text about a person.
const FREE_TEXT: [&str; 2] = ["text", "reason"];

fn event_aad(case: CaseId, seq: i64, field: &str) -> String {
    format!("case:{case}:{seq}:{field}")
}

fn summary_aad(case: CaseId) -> String {
    format!("cases.summary:{case}")
}

/// A case's data key, unwrapped, or `None` when it was destroyed (erasure, retention).
pub fn case_key(keyring: &Keyring, case: CaseId, wrapped: Option<&[u8]>) -> StoreResult<Option<DataKey>> {
    wrapped.map(|w| keyring.data_key(&case.to_string(), w).map_err(|_| undecryptable("data_keys"))).transpose()
}

pub fn seal_summary(key: &DataKey, case: CaseId, summary: Option<&str>) -> Option<String> {
    summary.map(|s| key.seal_text(&summary_aad(case), s))
}

/// The summary in clear; `None` when there is none or its key was destroyed.
pub fn open_summary(key: Option<&DataKey>, case: CaseId, sealed: Option<&str>) -> StoreResult<Option<String>> {
    match (key, sealed) {
        (Some(key), Some(sealed)) => {
            key.open_text(&summary_aad(case), sealed).map(Some).map_err(|_| undecryptable("cases.summary"))
        }
        _ => Ok(None),
    }
}

/// The event's name and its data with every free-text field replaced by
/// `{"sealed": "<base64url>"}` under the case's key: the form the timeline and the audit log keep.
pub fn seal_event(key: &DataKey, case: CaseId, seq: i64, event: &CaseEvent) -> (&'static str, Value) {
    let (name, data) = event_to_json(event);
    let mut value: Value = serde_json::from_str(&data).unwrap_or(Value::Object(Map::new()));
    if let Value::Object(map) = &mut value {
        for field in FREE_TEXT {
            if let Some(Value::String(text)) = map.get(field) {
                let sealed = key.seal_text(&event_aad(case, seq, field), text);
                map.insert(field.to_owned(), json!({ "sealed": sealed }));
            }
        }
    }
    (name, value)
}

/// Reads a stored event. When its case's key is gone, its free text reads as empty and the
/// second value is `true`: the entry is shown as erased, never guessed at.
pub fn open_event(
    key: Option<&DataKey>,
    case: CaseId,
    seq: i64,
    name: &str,
    data: &str,
) -> StoreResult<(CaseEvent, bool)> {
    let mut value: Value =
        serde_json::from_str(data).map_err(|_| StoreError::Corrupt(format!("{name} does not parse")))?;
    let mut erased = false;
    if let Value::Object(map) = &mut value {
        for field in FREE_TEXT {
            let Some(sealed) = map.get(field).and_then(|v| v.get("sealed")).and_then(Value::as_str) else {
                continue;
            };
            let text = match key {
                Some(key) => key
                    .open_text(&event_aad(case, seq, field), sealed)
                    .map_err(|_| undecryptable("case_events.data"))?,
                None => {
                    erased = true;
                    String::new()
                }
            };
            map.insert(field.to_owned(), Value::String(text));
        }
    }
    Ok((event_from_json(name, &value.to_string())?, erased))
}
