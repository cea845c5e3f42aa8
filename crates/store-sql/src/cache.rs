//! What nearly every request reads and almost nothing writes, kept for a few seconds: a
//! tenant's record, its current assurance policy, its own message templates. A change made
//! through this store drops its entry at once; one made by another process (several
//! instances on one PostgreSQL) is seen within [`FRESH_FOR`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use regain_core::{Tenant, TenantId};
use regain_store::{StoredPolicy, StoredTemplate};

/// How long an entry is used before it is read again.
pub const FRESH_FOR: Duration = Duration::from_secs(5);

/// Entries by tenant, each with when it was read.
struct Entries<T>(Mutex<HashMap<TenantId, (Instant, T)>>);

impl<T: Clone> Entries<T> {
    fn new() -> Self {
        Self(Mutex::new(HashMap::new()))
    }

    fn get(&self, tenant: TenantId) -> Option<T> {
        let entries = self.0.lock().ok()?;
        entries.get(&tenant).filter(|(at, _)| at.elapsed() < FRESH_FOR).map(|(_, value)| value.clone())
    }

    /// Keeps `value`, read at `read_at`, unless the entry was dropped since: a read that
    /// started before a change must not put back what the change replaced.
    fn put(&self, tenant: TenantId, read_at: Instant, value: T, generation: &Generation) {
        if let Ok(mut entries) = self.0.lock() {
            if generation.unchanged_since(tenant, read_at) {
                entries.insert(tenant, (read_at, value));
            }
        }
    }

    fn drop_entry(&self, tenant: TenantId) {
        if let Ok(mut entries) = self.0.lock() {
            entries.remove(&tenant);
        }
    }
}

/// When each tenant's entries were last dropped.
struct Generation(Mutex<HashMap<TenantId, Instant>>);

impl Generation {
    fn unchanged_since(&self, tenant: TenantId, read_at: Instant) -> bool {
        self.0.lock().map(|changed| changed.get(&tenant).is_none_or(|at| *at < read_at)).unwrap_or(false)
    }
}

/// The store's read cache; see the module documentation. Clones share it, as the store's
/// clones share the database.
#[derive(Clone)]
pub struct ReadCache(Arc<Kept>);

struct Kept {
    tenants: Entries<Tenant>,
    policies: Entries<Option<StoredPolicy>>,
    templates: Entries<Vec<StoredTemplate>>,
    changed: Generation,
}

impl Default for ReadCache {
    fn default() -> Self {
        Self(Arc::new(Kept {
            tenants: Entries::new(),
            policies: Entries::new(),
            templates: Entries::new(),
            changed: Generation(Mutex::new(HashMap::new())),
        }))
    }
}

impl std::fmt::Debug for ReadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCache").field("fresh_for", &FRESH_FOR).finish_non_exhaustive()
    }
}

/// A read about to be made, to be kept with [`ReadCache`]'s `keep_*` once it answers.
#[derive(Clone, Copy)]
pub struct Reading(Instant);

impl ReadCache {
    pub fn reading() -> Reading {
        Reading(Instant::now())
    }

    pub fn tenant(&self, id: TenantId) -> Option<Tenant> {
        self.0.tenants.get(id)
    }
    pub fn keep_tenant(&self, read: Reading, tenant: &Tenant) {
        self.0.tenants.put(tenant.id, read.0, tenant.clone(), &self.0.changed);
    }

    /// The tenant's current policy (`Some(None)`: it has none and uses the default).
    pub fn policy(&self, tenant: TenantId) -> Option<Option<StoredPolicy>> {
        self.0.policies.get(tenant)
    }
    pub fn keep_policy(&self, tenant: TenantId, read: Reading, policy: &Option<StoredPolicy>) {
        self.0.policies.put(tenant, read.0, policy.clone(), &self.0.changed);
    }

    pub fn templates(&self, tenant: TenantId) -> Option<Vec<StoredTemplate>> {
        self.0.templates.get(tenant)
    }
    pub fn keep_templates(&self, tenant: TenantId, read: Reading, templates: &[StoredTemplate]) {
        self.0.templates.put(tenant, read.0, templates.to_vec(), &self.0.changed);
    }

    /// Drops everything kept about `tenant`: called when a change to it commits.
    pub fn changed(&self, tenant: TenantId) {
        if let Ok(mut changed) = self.0.changed.0.lock() {
            changed.insert(tenant, Instant::now());
        }
        self.0.tenants.drop_entry(tenant);
        self.0.policies.drop_entry(tenant);
        self.0.templates.drop_entry(tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> Tenant {
        Tenant {
            id: TenantId::parse("id", "0190f0e2-3c4d-7a8b-9c0d-1e2f3a4b5c6d").unwrap(),
            slug: regain_core::TenantSlug::parse("slug", "acme").unwrap(),
            display_name: name.into(),
            settings: Default::default(),
            created_at: regain_store::conformance::t0(),
        }
    }

    #[test]
    fn a_change_drops_what_was_kept_and_a_read_from_before_it_is_not_kept() {
        let cache = ReadCache::default();
        let old = tenant("Acme");
        let read = ReadCache::reading();
        cache.keep_tenant(read, &old);
        assert_eq!(cache.tenant(old.id), Some(old.clone()));
        // A read that started before the change answers after it: not kept.
        let slow = ReadCache::reading();
        std::thread::sleep(Duration::from_millis(2));
        cache.changed(old.id);
        assert_eq!(cache.tenant(old.id), None);
        cache.keep_tenant(slow, &old);
        assert_eq!(cache.tenant(old.id), None, "a read from before the change must not put the old record back");
        std::thread::sleep(Duration::from_millis(2));
        let new = tenant("Acme Corp");
        cache.keep_tenant(ReadCache::reading(), &new);
        assert_eq!(cache.tenant(new.id).map(|t| t.display_name), Some("Acme Corp".to_owned()));
        assert_eq!(cache.policy(new.id), None, "nothing kept for the policy yet");
    }
}
