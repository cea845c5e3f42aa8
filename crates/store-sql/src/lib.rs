//! The SQL both backends share. SQLite and PostgreSQL accept the same `$N` placeholders and,
//! with timestamps as integer microseconds and ids as text, the same statements; so the
//! [`Store`](regain_store::Store) implementation is written once, in [`impl_sql_store!`], and
//! each backend crate instantiates it for its own concrete sqlx database type. What differs
//! (pools, pragmas, how a write transaction begins, error classification, migrations) stays in
//! the backend crate, which provides three inherent methods the macro calls:
//!
//! - `fn read_pool(&self) -> &sqlx::Pool<Db>`
//! - `async fn write_tx(&self) -> StoreResult<sqlx::Transaction<'static, Db>>`
//! - `fn map_err(error: sqlx::Error) -> StoreError`

pub mod cache;
pub mod recovery;
pub mod risk;
pub mod rows;
pub mod sealing;
pub mod verification;

#[doc(hidden)]
pub use {async_trait, futures, regain_core, regain_crypto, regain_merkle, regain_store, serde_json, sqlx, uuid};

/// How stale a session's idle deadline or a key's last use may get before it is written again.
pub const TOUCH_SLACK: regain_core::chrono::Duration = regain_core::chrono::Duration::seconds(60);

pub const TENANT_COLUMNS: &str = "id, slug, display_name, settings, created_at";
pub const STAFF_COLUMNS: &str =
    "id, tenant_id, email, display_name, role, active, password_hash, totp_secret, locked_until, created_at";
pub const API_KEY_COLUMNS: &str =
    "id, tenant_id, name, role, secret_hash, created_by, created_at, last_used_at, revoked_at";
pub const CUSTOMER_COLUMNS: &str = "id, tenant_id, external_id, sealed, status, \
     privileged, vip, password_enrolled, totp_enrolled, recovery_codes_remaining, passkeys, created_at, updated_at";
/// Selected after [`CUSTOMER_COLUMNS`] or [`CASE_COLUMNS`]: the record's wrapped data key.
pub const CUSTOMER_KEY: &str = "(SELECT wrapped FROM data_keys WHERE subject = customers.id) AS wrapped_key";
pub const CASE_KEY: &str = "(SELECT wrapped FROM data_keys WHERE subject = cases.id) AS wrapped_key";
pub const CASE_COLUMNS: &str = "id, tenant_id, kind, channel, state, tier, assignee, customer_id, summary, \
     approval_required, approval_requested_by, decided_by, cooling_off_until, first_response_due, resolution_due, \
     first_response_at, expires_at, created_by, created_at, updated_at, version, risk_score, risk_band, risk_reasons, observed";

/// Refuses to migrate a database that holds customer records or cases written before personal
/// data was encrypted (migration 3): that migration rebuilds their tables, and a pre-release
/// database is not worth a converter. A new database, or one already past it, passes.
pub async fn refuse_plaintext_records<Db>(pool: &sqlx::Pool<Db>) -> regain_store::StoreResult<()>
where
    Db: sqlx::Database,
    for<'c> &'c sqlx::Pool<Db>: sqlx::Executor<'c, Database = Db>,
    i64: sqlx::Type<Db> + for<'r> sqlx::Decode<'r, Db>,
    for<'q> <Db as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, Db>,
    usize: sqlx::ColumnIndex<<Db as sqlx::Database>::Row>,
{
    // Each query fails when its table does not exist, which here means "nothing to refuse".
    if sqlx::query_scalar::<Db, i64>("SELECT COUNT(*) FROM keyring").fetch_one(pool).await.is_ok() {
        return Ok(());
    }
    let records: i64 =
        sqlx::query_scalar::<Db, i64>("SELECT (SELECT COUNT(*) FROM customers) + (SELECT COUNT(*) FROM cases)")
            .fetch_one(pool)
            .await
            .unwrap_or(0);
    if records > 0 {
        return Err(regain_store::StoreError::Other(format!(
            "this database holds {records} customer record(s) and case(s) written by a pre-release build that \
             stored personal data unencrypted; this version encrypts it and will not convert them. \
             Export what you need and start from a new database (for the demo: `regain demo --fresh`)"
        )));
    }
    Ok(())
}

/// Writes an audit entry that takes its position in the log as it is written: for a database
/// with one writer at a time (SQLite), where no two transactions can take the same position.
/// Binds: tenant, at, action, case, customer, entry.
pub const AUDIT_INSERT_POSITIONED: &str =
    "INSERT INTO audit_entries (seq, tenant_id, at, action, case_id, customer_id, entry) \
     VALUES ((SELECT COALESCE(MAX(seq) + 1, 0) FROM audit_entries), $1, $2, $3, $4, $5, $6)";
/// Writes an audit entry for the sequencer to place later (PostgreSQL, with concurrent writers).
pub const AUDIT_INSERT_WAITING: &str =
    "INSERT INTO audit_entries (tenant_id, at, action, case_id, customer_id, entry) \
     VALUES ($1, $2, $3, $4, $5, $6)";
/// Rows one multi-row INSERT writes at most (the effects and events of one change are a few).
pub const ROWS_PER_INSERT: usize = 100;

/// Implements `regain_store::Store` for `$store`, whose database is `$db`. With
/// `positions_at_write = true` an audit entry takes its log position in the transaction that
/// writes it (only sound with one writer at a time); otherwise the sequencer assigns positions.
#[macro_export]
macro_rules! impl_sql_store {
    ($store:ty, $db:ty, $backend:literal, positions_at_write = $at_write:literal) => {
        const _: () = {
            use $crate::regain_core::action::ActionKind;
            use $crate::regain_core::case::{CaseEvent, CaseState};
            use $crate::regain_core::customer::{Customer, CustomerLookup, CustomerStatus};
            use $crate::regain_core::{Actor, ApiKeyId, Case, CaseId, CustomerId, StaffId, Tenant, TenantId, TenantSettings, Timestamp};
            use $crate::regain_store::codec::{actor_to_text, audit_entry_text, micros, settings_to_json};
            use $crate::regain_store::*;
            use $crate::rows::*;
            use $crate::sqlx::{self, QueryBuilder};
            use $crate::{API_KEY_COLUMNS, CASE_COLUMNS, CASE_KEY, CUSTOMER_COLUMNS, CUSTOMER_KEY, STAFF_COLUMNS, TENANT_COLUMNS};
            use $crate::regain_crypto::{DataKey, Keyring, KeyringRecord, MasterKey};
            use $crate::sealing;

            type Db = $db;
            type Tx = sqlx::Transaction<'static, Db>;

            impl $store {
                /// The hashes of the complete subtrees among `ids` (a proof or a frontier:
                /// O(log n) of them), each read from, or recomputed within, its tile.
                async fn read_nodes(
                    conn: &mut <Db as sqlx::Database>::Connection,
                    ids: &[NodeId],
                ) -> StoreResult<std::collections::HashMap<NodeId, [u8; 32]>> {
                    use $crate::regain_merkle::tiles;
                    let mut found = std::collections::HashMap::with_capacity(ids.len());
                    let spans: Vec<(NodeId, tiles::TileSpan)> = ids.iter().map(|id| (*id, tiles::span(*id))).collect();
                    let wanted: std::collections::BTreeSet<tiles::TileId> = spans.iter().map(|(_, s)| s.tile).collect();
                    let read = Self::read_tiles(conn, &wanted).await?;
                    for (id, span) in spans {
                        if let Some(hash) = read.get(&span.tile).and_then(|t| tiles::node_from_tile(&span, t)) {
                            found.insert(id, hash);
                        }
                    }
                    Ok(found)
                }

                async fn read_tiles(
                    conn: &mut <Db as sqlx::Database>::Connection,
                    wanted: &std::collections::BTreeSet<$crate::regain_merkle::tiles::TileId>,
                ) -> StoreResult<std::collections::HashMap<$crate::regain_merkle::tiles::TileId, Vec<[u8; 32]>>> {
                    use $crate::regain_merkle::tiles::TileId;
                    let mut read = std::collections::HashMap::with_capacity(wanted.len());
                    if wanted.is_empty() {
                        return Ok(read);
                    }
                    let mut q: QueryBuilder<'_, Db> = QueryBuilder::new("SELECT level, idx, hashes FROM audit_tiles WHERE ");
                    for (i, tile) in wanted.iter().enumerate() {
                        if i > 0 {
                            q.push(" OR ");
                        }
                        q.push("(level = ").push_bind(i64::from(tile.level));
                        q.push(" AND idx = ").push_bind(i64::try_from(tile.index).unwrap_or(i64::MAX)).push(")");
                    }
                    let rows: Vec<(i64, i64, Vec<u8>)> = q.build_query_as().fetch_all(&mut *conn).await.map_err(Self::map_err)?;
                    for (level, idx, blob) in rows {
                        if blob.len() % 32 != 0 || blob.len() > 32 * 256 {
                            return Err(StoreError::Corrupt("audit_tiles.hashes does not parse".into()));
                        }
                        let tile = TileId { level: u8::try_from(level).unwrap_or(u8::MAX), index: u64::try_from(idx).unwrap_or(0) };
                        let hashes = blob.chunks_exact(32).map(|h| hash32("audit_tiles.hashes", h)).collect::<StoreResult<Vec<_>>>()?;
                        read.insert(tile, hashes);
                    }
                    Ok(read)
                }

                /// Adds an append's new nodes to their tiles (partial tiles are rewritten longer).
                async fn write_tiles(tx: &mut Tx, nodes: &[(NodeId, [u8; 32])]) -> StoreResult<()> {
                    use $crate::regain_merkle::tiles;
                    let appends = tiles::tile_appends(nodes)
                        .map_err(|node| StoreError::Corrupt(format!("audit tree: node {node:?} leaves a gap in its tile")))?;
                    let partial: std::collections::BTreeSet<tiles::TileId> =
                        appends.iter().filter(|(_, (offset, _))| *offset > 0).map(|(tile, _)| *tile).collect();
                    let existing = Self::read_tiles(&mut **tx, &partial).await?;
                    let mut rows: Vec<(i64, i64, Vec<u8>)> = Vec::with_capacity(appends.len());
                    for (tile, (offset, hashes)) in appends {
                        let mut blob = Vec::with_capacity((offset + hashes.len()) * 32);
                        if offset > 0 {
                            let before = existing.get(&tile).map_or(&[][..], Vec::as_slice);
                            if before.len() != offset {
                                return Err(StoreError::Corrupt(format!("audit tile {tile:?} holds {} hashes, not {offset}", before.len())));
                            }
                            before.iter().for_each(|h| blob.extend_from_slice(h));
                        }
                        hashes.iter().for_each(|h| blob.extend_from_slice(h));
                        rows.push((i64::from(tile.level), i64::try_from(tile.index).unwrap_or(i64::MAX), blob));
                    }
                    for chunk in rows.chunks(200) {
                        let mut q: QueryBuilder<'_, Db> = QueryBuilder::new("INSERT INTO audit_tiles (level, idx, hashes) ");
                        q.push_values(chunk, |mut row, (level, idx, blob)| {
                            row.push_bind(*level).push_bind(*idx).push_bind(blob.clone());
                        });
                        q.push(" ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes");
                        q.build().execute(&mut **tx).await.map_err(Self::map_err)?;
                    }
                    Ok(())
                }

                /// After the migration to tiles: rebuilds them from the entries, which they are
                /// derived from, and checks the result against the latest checkpoint. Nothing to
                /// do when the log is empty or already has tiles.
                pub async fn rebuild_audit_tiles(&self) -> StoreResult<u64> {
                    let mut tx = self.write_tx().await?;
                    let tiles: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_tiles").fetch_one(&mut *tx).await.map_err(Self::map_err)?;
                    let latest: Option<(i64, Vec<u8>)> =
                        sqlx::query_as("SELECT size, root FROM audit_checkpoints ORDER BY size DESC LIMIT 1")
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(Self::map_err)?;
                    let Some((latest_size, latest_root)) = latest.filter(|_| tiles == 0) else {
                        tx.rollback().await.map_err(Self::map_err)?;
                        return Ok(0);
                    };
                    let mut size = 0u64;
                    let mut frontier: Vec<[u8; 32]> = Vec::new();
                    let mut root = [0u8; 32];
                    while size < u64::try_from(latest_size).unwrap_or(0) {
                        let rows: Vec<String> = sqlx::query_scalar("SELECT entry FROM audit_entries WHERE seq >= $1 AND seq < $2 ORDER BY seq")
                            .bind(i64::try_from(size).unwrap_or(i64::MAX))
                            .bind(latest_size.min(i64::try_from(size).unwrap_or(i64::MAX) + 10_000))
                            .fetch_all(&mut *tx)
                            .await
                            .map_err(Self::map_err)?;
                        if rows.is_empty() {
                            return Err(StoreError::Corrupt(format!("audit_entries: entry {size} is missing")));
                        }
                        let leaves: Vec<[u8; 32]> = rows.iter().map(|e| $crate::regain_merkle::leaf_hash(e.as_bytes())).collect();
                        let appended = $crate::regain_merkle::append(size, &frontier, &leaves)
                            .map_err(|e| StoreError::Corrupt(format!("audit tree: {e}")))?;
                        Self::write_tiles(&mut tx, &appended.nodes).await?;
                        size = appended.size;
                        frontier = appended.frontier;
                        root = appended.root;
                    }
                    if latest_root.as_slice() != root.as_slice() {
                        return Err(StoreError::Corrupt(format!(
                            "the audit entries do not give the root of the checkpoint of size {latest_size}: run `regain audit verify`"
                        )));
                    }
                    tx.commit().await.map_err(Self::map_err)?;
                    Ok(size)
                }

                /// Writes one audit entry in the caller's transaction (SECURITY.md L1).
                async fn insert_audit(tx: &mut Tx, record: &AuditRecord) -> StoreResult<()> {
                    sqlx::query(if $at_write { $crate::AUDIT_INSERT_POSITIONED } else { $crate::AUDIT_INSERT_WAITING })
                    .bind(record.tenant_id.map(|t| t.to_string()))
                    .bind(micros(record.at))
                    .bind(&record.action)
                    .bind(record.case_id.map(|c| c.to_string()))
                    .bind(record.customer_id.map(|c| c.to_string()))
                    .bind(audit_entry_text(record))
                    .execute(&mut **tx)
                    .await
                    .map_err(Self::map_err)?;
                    Ok(())
                }

                async fn load_customers(&self, rows: Vec<CustomerRow>) -> StoreResult<Vec<Customer>> {
                    let keyring = self.keys.get()?;
                    let mut customers = Vec::with_capacity(rows.len());
                    for row in rows {
                        // Both lists in one statement: a customer is read on every step of a case.
                        let contacts: Vec<$crate::rows::ContactRow> = sqlx::query_as(
                            "SELECT 'email' AS kind, position, address_sealed AS sealed, verified, added_at \
                             FROM customer_emails WHERE customer_id = $1 \
                             UNION ALL SELECT 'phone' AS kind, position, number_sealed AS sealed, verified, added_at \
                             FROM customer_phones WHERE customer_id = $1 ORDER BY kind, position",
                        )
                        .bind(&row.id)
                        .fetch_all(self.read_pool())
                        .await
                        .map_err(Self::map_err)?;
                        let (emails, phones) = $crate::rows::ContactRow::split(contacts);
                        customers.push(row.into_domain(&keyring, emails, phones)?);
                    }
                    Ok(customers)
                }

                /// The case's data key, read in the transaction; `None` once destroyed.
                /// A new case, its data key and first events, and (when given) its recovery
                /// request, in one transaction.
                async fn create_case_in(
                    &self,
                    case: &Case,
                    events: &[CaseEvent],
                    actor: &Actor,
                    context: Option<&RequestContext>,
                ) -> StoreResult<()> {
                    self.create_case_effects(case, events, actor, context, &[]).await
                }

                async fn create_case_effects(
                    &self,
                    case: &Case,
                    events: &[CaseEvent],
                    actor: &Actor,
                    context: Option<&RequestContext>,
                    effects: &[Effect],
                ) -> StoreResult<()> {
                    let keyring = self.keys.get()?;
                    let (key, wrapped) = keyring.new_data_key(&case.id.to_string());
                    let mut tx = self.write_tx().await?;
                    let insert = format!(
                        "INSERT INTO cases ({CASE_COLUMNS}) VALUES \
                         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)"
                    );
                    Self::bind_case(sqlx::query(&insert), case, Some(&key)).execute(&mut *tx).await.map_err(Self::map_err)?;
                    Self::insert_data_key(&mut tx, &keyring.master().id(), &case.id.to_string(), "case", case.tenant_id, &wrapped, case.created_at).await?;
                    Self::append_events(&mut tx, case, &key, events, actor).await?;
                    if let Some(context) = context {
                        Self::write_request(&mut tx, &keyring, &key, case.tenant_id, case.id, case.created_at, case.customer_id, context).await?;
                    }
                    Self::apply_effects_in(&mut tx, &keyring, case.created_at, effects).await?;
                    tx.commit().await.map_err(Self::map_err)
                }

                /// The customer's cases in `states`, newest first (every one), on `conn`: the read
                /// pool's for a look, a transaction's for the holds it checks (G5).
                async fn cases_in(
                    conn: &mut <Db as sqlx::Database>::Connection,
                    tenant: TenantId,
                    customer: CustomerId,
                    states: &[CaseState],
                ) -> StoreResult<Vec<CaseBrief>> {
                    if states.is_empty() {
                        return Ok(Vec::new());
                    }
                    let mut q: QueryBuilder<'_, Db> =
                        QueryBuilder::new("SELECT id, kind, state, cooling_off_until FROM cases WHERE tenant_id = ");
                    q.push_bind(tenant.to_string()).push(" AND customer_id = ").push_bind(customer.to_string());
                    q.push(" AND state IN (");
                    let mut list = q.separated(", ");
                    for s in states {
                        list.push_bind(s.as_str());
                    }
                    q.push(") ORDER BY id DESC");
                    let rows: Vec<(String, String, String, Option<i64>)> =
                        q.build_query_as().fetch_all(&mut *conn).await.map_err(Self::map_err)?;
                    rows.into_iter()
                        .map(|(id, kind, state, until)| {
                            Ok(CaseBrief {
                                id: $crate::regain_store::codec::parse_column("cases.id", &id, CaseId::parse)?,
                                kind: $crate::regain_store::codec::parse_column("cases.kind", &kind, $crate::regain_core::CaseKind::parse)?,
                                state: $crate::regain_store::codec::parse_column("cases.state", &state, CaseState::parse)?,
                                cooling_off_until: until.map($crate::regain_store::codec::timestamp),
                            })
                        })
                        .collect()
                }

                async fn case_key_in(tx: &mut Tx, keyring: &Keyring, case: CaseId) -> StoreResult<Option<DataKey>> {
                    let wrapped: Option<Vec<u8>> = sqlx::query_scalar("SELECT wrapped FROM data_keys WHERE subject = $1")
                        .bind(case.to_string())
                        .fetch_optional(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                    sealing::case_key(keyring, case, wrapped.as_deref())
                }

                async fn insert_data_key(
                    tx: &mut Tx,
                    master_key_id: &str,
                    subject: &str,
                    kind: &str,
                    tenant: TenantId,
                    wrapped: &[u8],
                    at: Timestamp,
                ) -> StoreResult<()> {
                    // Only while the keyring is still under the master key that wrapped it: after
                    // a rotation by another process, this one must restart with the new key.
                    let done = sqlx::query(
                        "INSERT INTO data_keys (subject, subject_kind, key_tenant, wrapped, created_at) \
                         SELECT $1, $2, $3, $4, $5 FROM keyring WHERE id = 1 AND master_key_id = $6",
                    )
                    .bind(subject)
                    .bind(kind)
                    .bind(tenant.to_string())
                    .bind(wrapped)
                    .bind(micros(at))
                    .bind(master_key_id)
                    .execute(&mut **tx)
                    .await
                    .map_err(Self::map_err)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::Keyring(
                            "the master key was rotated by another process; restart with the new key".into(),
                        ));
                    }
                    Ok(())
                }

                /// Re-wraps, in batches, every data key not yet under `next`'s master key.
                async fn rewrap_data_keys(tx: &mut Tx, current: &Keyring, next: &Keyring) -> StoreResult<u64> {
                    let mut after = String::new();
                    let mut count = 0u64;
                    loop {
                        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
                            "SELECT subject, wrapped FROM data_keys WHERE subject > $1 ORDER BY subject LIMIT 1000",
                        )
                        .bind(&after)
                        .fetch_all(&mut **tx)
                        .await
                        .map_err(Self::map_err)?;
                        let Some((last, _)) = rows.last() else { break };
                        after = last.clone();
                        for (subject, wrapped) in rows {
                            if next.data_key(&subject, &wrapped).is_ok() {
                                continue;
                            }
                            let rewrapped = current
                                .master()
                                .rewrap(next.master(), &wrapped, &subject)
                                .map_err(|_| StoreError::Corrupt("data_keys.wrapped does not decrypt under the master key".into()))?;
                            sqlx::query("UPDATE data_keys SET wrapped = $2 WHERE subject = $1")
                                .bind(&subject)
                                .bind(&rewrapped)
                                .execute(&mut **tx)
                                .await
                                .map_err(Self::map_err)?;
                            count += 1;
                        }
                    }
                    Ok(count)
                }

                /// The terminal states as an SQL list: cases that take no more changes.
                fn terminal_states() -> String {
                    CaseState::ALL
                        .iter()
                        .filter(|s| s.is_terminal())
                        .map(|s| format!("'{}'", s.as_str()))
                        .collect::<Vec<_>>()
                        .join(", ")
                }

                async fn read_keyring(&self) -> StoreResult<Option<KeyringRecord>> {
                    let row: Option<(String, Vec<u8>, Vec<u8>)> =
                        sqlx::query_as("SELECT master_key_id, key_check, index_key FROM keyring WHERE id = 1")
                            .fetch_optional(self.read_pool())
                            .await
                            .map_err(Self::map_err)?;
                    Ok(row.map(|(master_key_id, check, index_key)| KeyringRecord { master_key_id, check, index_key }))
                }

                async fn append_events(
                    tx: &mut Tx,
                    case: &Case,
                    key: &DataKey,
                    events: &[CaseEvent],
                    actor: &Actor,
                ) -> StoreResult<()> {
                    if events.is_empty() {
                        return Ok(());
                    }
                    let case_id = case.id.to_string();
                    // The case's last event and, where entries take their log position as they
                    // are written, the log's next position: one read for both.
                    let (last, mut audit_seq): (Option<i64>, Option<i64>) = if $at_write {
                        sqlx::query_as(
                            "SELECT (SELECT MAX(seq) FROM case_events WHERE case_id = $1), \
                             (SELECT COALESCE(MAX(seq) + 1, 0) FROM audit_entries)",
                        )
                        .bind(&case_id)
                        .fetch_one(&mut **tx)
                        .await
                        .map_err(Self::map_err)?
                    } else {
                        let last = sqlx::query_scalar("SELECT MAX(seq) FROM case_events WHERE case_id = $1")
                            .bind(&case_id)
                            .fetch_one(&mut **tx)
                            .await
                            .map_err(Self::map_err)?;
                        (last, None)
                    };
                    let actor_value = actor;
                    let actor = actor_to_text(actor);
                    let mut seq = last.unwrap_or(0);
                    // The state each event leaves the case in: detail events before a transition
                    // describe the state it starts from, the transition and what follows its target.
                    let mut state = events
                        .iter()
                        .find_map(|e| match e {
                            CaseEvent::StateChanged { from, .. } => Some(*from),
                            _ => None,
                        })
                        .unwrap_or(case.state);
                    let mut rows = Vec::with_capacity(events.len());
                    let mut records = Vec::with_capacity(events.len());
                    for event in events {
                        if let CaseEvent::StateChanged { to, .. } = event {
                            state = *to;
                        }
                        seq += 1;
                        // Free text is sealed under the case's key, here and in the audit entry.
                        let (name, sealed) = sealing::seal_event(key, case.id, seq, event);
                        rows.push((seq, name, sealed.to_string(), state));
                        // Every timeline event is an audit entry too, in the same transaction.
                        let mut record = AuditRecord::new(Some(case.tenant_id), *actor_value, name, case.updated_at);
                        record.case_id = Some(case.id);
                        record.customer_id = case.customer_id;
                        record.data = $crate::serde_json::json!({
                            "case_seq": seq,
                            "state": state.as_str(),
                            "event": sealed,
                        });
                        records.push(record);
                    }
                    // All of them in one statement each, events and audit entries.
                    for chunk in rows.chunks($crate::ROWS_PER_INSERT) {
                        let sql = format!(
                            "INSERT INTO case_events (case_id, seq, tenant_id, at, actor, event_type, data, state_after) VALUES {}",
                            $crate::recovery::numbered_rows(chunk.len(), 8, "($1, $2, $3, $4, $5, $6, $7, $8)")
                        );
                        let mut query = sqlx::query(&sql);
                        for (seq, name, data, state) in chunk {
                            query = query
                                .bind(&case_id)
                                .bind(*seq)
                                .bind(case.tenant_id.to_string())
                                .bind(micros(case.updated_at))
                                .bind(&actor)
                                .bind(*name)
                                .bind(data)
                                .bind(state.as_str());
                        }
                        query.execute(&mut **tx).await.map_err(Self::map_err)?;
                    }
                    for chunk in records.chunks($crate::ROWS_PER_INSERT) {
                        let (row, width, seq_column) = match audit_seq {
                            Some(_) => ("($1, $2, $3, $4, $5, $6, $7)", 7, "seq, "),
                            None => ("($1, $2, $3, $4, $5, $6)", 6, ""),
                        };
                        let sql = format!(
                            "INSERT INTO audit_entries ({seq_column}tenant_id, at, action, case_id, customer_id, entry) VALUES {}",
                            $crate::recovery::numbered_rows(chunk.len(), width, row)
                        );
                        let mut query = sqlx::query(&sql);
                        for record in chunk {
                            if let Some(next) = audit_seq.as_mut() {
                                query = query.bind(*next);
                                *next += 1;
                            }
                            query = query
                                .bind(record.tenant_id.map(|t| t.to_string()))
                                .bind(micros(record.at))
                                .bind(&record.action)
                                .bind(record.case_id.map(|c| c.to_string()))
                                .bind(record.customer_id.map(|c| c.to_string()))
                                .bind(audit_entry_text(record));
                        }
                        query.execute(&mut **tx).await.map_err(Self::map_err)?;
                    }
                    Ok(())
                }

                fn bind_case<'q>(
                    query: sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>,
                    case: &Case,
                    key: Option<&DataKey>,
                ) -> sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>> {
                    query
                        .bind(case.id.to_string())
                        .bind(case.tenant_id.to_string())
                        .bind(case.kind.as_str())
                        .bind(case.channel.as_str())
                        .bind(case.state.as_str())
                        .bind(i64::from(case.tier.get()))
                        .bind(case.assignee.map(|a| a.to_string()))
                        .bind(case.customer_id.map(|c| c.to_string()))
                        .bind(key.and_then(|k| sealing::seal_summary(k, case.id, case.summary.as_deref())))
                        .bind(case.approval_required)
                        .bind(case.approval_requested_by.as_ref().map(actor_to_text))
                        .bind(case.decided_by.as_ref().map(actor_to_text))
                        .bind(case.cooling_off_until.map(micros))
                        .bind(micros(case.first_response_due))
                        .bind(micros(case.resolution_due))
                        .bind(case.first_response_at.map(micros))
                        .bind(micros(case.expires_at))
                        .bind(actor_to_text(&case.created_by))
                        .bind(micros(case.created_at))
                        .bind(micros(case.updated_at))
                        .bind(case.version)
                        .bind($crate::regain_store::codec::risk_to_columns(case.risk.as_ref()).0)
                        .bind($crate::regain_store::codec::risk_to_columns(case.risk.as_ref()).1)
                        .bind($crate::regain_store::codec::risk_to_columns(case.risk.as_ref()).2)
                        .bind($crate::regain_store::codec::observed_to_text(&case.observed))
                }
            }

            #[$crate::async_trait::async_trait]
            impl Store for $store {
                fn backend(&self) -> &'static str {
                    $backend
                }

                async fn ping(&self) -> StoreResult<()> {
                    sqlx::query("SELECT 1").execute(self.read_pool()).await.map_err(Self::map_err)?;
                    Ok(())
                }

                async fn master_key_id(&self) -> StoreResult<Option<String>> {
                    Ok(self.read_keyring().await?.map(|r| r.master_key_id))
                }

                async fn unlock(&self, master: MasterKey, now: Timestamp) -> StoreResult<Unlocked> {
                    let wrong = |e: $crate::regain_crypto::UnlockError| StoreError::Keyring(e.to_string());
                    if let Some(record) = self.read_keyring().await? {
                        self.keys.set(Keyring::unlock(master, &record).map_err(wrong)?)?;
                        return Ok(Unlocked::Opened);
                    }
                    let (keyring, record) = Keyring::create(master);
                    let mut tx = self.write_tx().await?;
                    let inserted = sqlx::query(
                        "INSERT INTO keyring (id, master_key_id, key_check, index_key, created_at) VALUES (1, $1, $2, $3, $4) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(&record.master_key_id)
                    .bind(&record.check)
                    .bind(&record.index_key)
                    .bind(micros(now))
                    .execute(&mut *tx)
                    .await
                    .map_err(Self::map_err)?
                    .rows_affected();
                    tx.commit().await.map_err(Self::map_err)?;
                    if inserted == 1 {
                        self.keys.set(keyring)?;
                        return Ok(Unlocked::Created);
                    }
                    // Another process created the keyring first: the key must open theirs.
                    let record = self.read_keyring().await?.ok_or(StoreError::NotFound)?;
                    self.keys.set(Keyring::unlock(keyring.into_master(), &record).map_err(wrong)?)?;
                    Ok(Unlocked::Opened)
                }

                async fn rotate_master_key(&self, next: MasterKey, audit: &AuditRecord) -> StoreResult<u64> {
                    let current = self.keys.get()?;
                    let (rotated, record) = current.rotate(next);
                    let mut tx = self.write_tx().await?;
                    // The keyring row first: it is what every other writer checks.
                    let done = sqlx::query(
                        "UPDATE keyring SET master_key_id = $1, key_check = $2, index_key = $3, rotated_at = $4 \
                         WHERE id = 1 AND master_key_id = $5",
                    )
                    .bind(&record.master_key_id)
                    .bind(&record.check)
                    .bind(&record.index_key)
                    .bind(micros(audit.at))
                    .bind(current.master().id())
                    .execute(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::Keyring(
                            "the master key was rotated by another process; restart with the new key".into(),
                        ));
                    }
                    let count = Self::rewrap_data_keys(&mut tx, &current, &rotated).await?;
                    let mut audit = audit.clone();
                    audit.data = $crate::serde_json::json!({
                        "from": current.master().id(),
                        "to": record.master_key_id,
                        "data_keys": count,
                    });
                    Self::insert_audit(&mut tx, &audit).await?;
                    tx.commit().await.map_err(Self::map_err)?;
                    // A writer that began before the rotation committed may have wrapped a key
                    // under the old master key: one more pass finds it (afterwards, the
                    // keyring check in every insert refuses the old key).
                    let mut tx = self.write_tx().await?;
                    Self::rewrap_data_keys(&mut tx, &current, &rotated).await?;
                    tx.commit().await.map_err(Self::map_err)?;
                    let master = rotated.into_master();
                    let record = self.read_keyring().await?.ok_or(StoreError::NotFound)?;
                    self.keys.set(Keyring::unlock(master, &record).map_err(|e| StoreError::Keyring(e.to_string()))?)?;
                    Ok(count)
                }

                async fn create_tenant(&self, tenant: &Tenant, audit: &AuditRecord) -> StoreResult<()> {
                    let mut tx = self.write_tx().await?;
                    sqlx::query(&format!("INSERT INTO tenants ({TENANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"))
                        .bind(tenant.id.to_string())
                        .bind(tenant.slug.as_str())
                        .bind(&tenant.display_name)
                        .bind(settings_to_json(&tenant.settings))
                        .bind(micros(tenant.created_at))
                        .execute(&mut *tx)
                        .await
                        .map_err(Self::map_err)?;
                    Self::insert_audit(&mut tx, audit).await?;
                    tx.commit().await.map_err(Self::map_err)
                }

                async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>> {
                    if let Some(tenant) = self.cache.tenant(id) {
                        return Ok(Some(tenant));
                    }
                    let read = $crate::cache::ReadCache::reading();
                    let row: Option<TenantRow> = sqlx::query_as(&format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1"))
                        .bind(id.to_string())
                        .fetch_optional(self.read_pool())
                        .await
                        .map_err(Self::map_err)?;
                    let tenant = row.map(TenantRow::into_domain).transpose()?;
                    if let Some(tenant) = &tenant {
                        self.cache.keep_tenant(read, tenant);
                    }
                    Ok(tenant)
                }

                async fn tenant_by_slug(&self, slug: &str) -> StoreResult<Option<Tenant>> {
                    let row: Option<TenantRow> = sqlx::query_as(&format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE slug = $1"))
                        .bind(slug)
                        .fetch_optional(self.read_pool())
                        .await
                        .map_err(Self::map_err)?;
                    row.map(TenantRow::into_domain).transpose()
                }

                async fn list_tenants(&self) -> StoreResult<Vec<Tenant>> {
                    let rows: Vec<TenantRow> = sqlx::query_as(&format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY slug"))
                        .fetch_all(self.read_pool())
                        .await
                        .map_err(Self::map_err)?;
                    rows.into_iter().map(TenantRow::into_domain).collect()
                }

                async fn update_tenant(&self, id: TenantId, display_name: &str, settings: &TenantSettings, audit: &AuditRecord) -> StoreResult<Tenant> {
                    let mut tx = self.write_tx().await?;
                    let row: Option<TenantRow> = sqlx::query_as(&format!(
                        "UPDATE tenants SET display_name = $2, settings = $3 WHERE id = $1 RETURNING {TENANT_COLUMNS}"
                    ))
                    .bind(id.to_string())
                    .bind(display_name)
                    .bind(settings_to_json(settings))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                    let tenant = row.ok_or(StoreError::NotFound)?.into_domain()?;
                    Self::insert_audit(&mut tx, audit).await?;
                    let committed = tx.commit().await.map_err(Self::map_err);
                    self.cache.changed(id);
                    committed?;
                    Ok(tenant)
                }

                async fn create_staff(&self, record: &StaffRecord, audit: &AuditRecord) -> StoreResult<()> {
                    let s = &record.staff;
                    let mut tx = self.write_tx().await?;
                    sqlx::query(
                        "INSERT INTO staff (id, tenant_id, email, email_norm, display_name, role, active, password_hash, totp_secret, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    )
                    .bind(s.id.to_string())
                    .bind(s.tenant_id.map(|t| t.to_string()))
                    .bind(s.email.as_str())
                    .bind(s.email.normalized())
                    .bind(&s.display_name)
                    .bind(s.role.as_str())
                    .bind(s.active)
                    .bind(&record.password_hash)
                    .bind(&record.totp_secret)
                    .bind(micros(s.created_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                    Self::insert_audit(&mut tx, audit).await?;
                    tx.commit().await.map_err(Self::map_err)
                }

                async fn staff(&self, id: StaffId) -> StoreResult<Option<StaffRecord>> {
                    let row: Option<StaffRow> = sqlx::query_as(&format!("SELECT {STAFF_COLUMNS} FROM staff WHERE id = $1"))
                        .bind(id.to_string())
                        .fetch_optional(self.read_pool())
                        .await
                        .map_err(Self::map_err)?;
                    row.map(StaffRow::into_domain).transpose()
                }

                async fn staff_by_email(&self, email_normalized: &str) -> StoreResult<Option<StaffRecord>> {
                    let row: Option<StaffRow> = sqlx::query_as(&format!("SELECT {STAFF_COLUMNS} FROM staff WHERE email_norm = $1"))
                        .bind(email_normalized)
                        .fetch_optional(self.read_pool())
                        .await
                        .map_err(Self::map_err)?;
                    row.map(StaffRow::into_domain).transpose()
                }

                async fn list_staff(&self, tenant: Option<TenantId>) -> StoreResult<Vec<StaffRecord>> {
                    let rows: Vec<StaffRow> = match tenant {
                        Some(t) => sqlx::query_as(&format!("SELECT {STAFF_COLUMNS} FROM staff WHERE tenant_id = $1 ORDER BY email_norm"))
                            .bind(t.to_string())
                            .fetch_all(self.read_pool())
                            .await,
                        None => sqlx::query_as(&format!("SELECT {STAFF_COLUMNS} FROM staff WHERE tenant_id IS NULL ORDER BY email_norm"))
                            .fetch_all(self.read_pool())
                            .await,
                    }
                    .map_err(Self::map_err)?;
                    rows.into_iter().map(StaffRow::into_domain).collect()
                }

                async fn claim_staff_totp_step(&self, id: StaffId, step: i64) -> StoreResult<bool> {
                    let mut tx = self.write_tx().await?;
                    let done = sqlx::query(
                        "UPDATE staff SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
                    )
                    .bind(id.to_string())
                    .bind(step)
                    .execute(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                    tx.commit().await.map_err(Self::map_err)?;
                    Ok(done.rows_affected() == 1)
                }

                async fn record_staff_login_failure(&self, id: StaffId, failures_max: u32, lock_until: Timestamp, audit: &AuditRecord) -> StoreResult<()> {
                    let mut tx = self.write_tx().await?;
                    sqlx::query(
                        "UPDATE staff SET \
                         locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END, \
                         failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END \
                         WHERE id = $1",
                    )
                    .bind(id.to_string())
                    .bind(i64::from(failures_max))
                    .bind(micros(lock_until))
                    .execute(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                    Self::insert_audit(&mut tx, audit).await?;
                    tx.commit().await.map_err(Self::map_err)
                }

                async fn record_staff_login(&self, id: StaffId, audit: &AuditRecord) -> StoreResult<()> {
                    let mut tx = self.write_tx().await?;
                    sqlx::query("UPDATE staff SET failed_logins = 0, locked_until = NULL WHERE id = $1")
                        .bind(id.to_string())
                        .execute(&mut *tx)
                        .await
                        .map_err(Self::map_err)?;
                    Self::insert_audit(&mut tx, audit).await?;
                    tx.commit().await.map_err(Self::map_err)
                }

                async fn create_session(&self, s: &SessionRecord) -> StoreResult<()> {
                    let mut tx = self.write_tx().await?;
                    sqlx::query(
                        "INSERT INTO staff_sessions (token_hash, staff_id, created_at, expires_at, idle_until) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&s.token_hash)
                    .bind(s.staff_id.to_string())
                    .bind(micros(s.created_at))
                    .bind(micros(s.expires_at))
                    .bind(micros(s.idle_until))
                    .execute(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                    tx.commit().await.map_err(Self::map_err)
                }

                async fn touch_session(
                    &self,
                    token_hash: &str,
                    now: Timestamp,
                    idle_until: Timestamp,
                ) -> StoreResult<Option<SessionRecord>> {
                    // Read on the reader pool; write only when the idle deadline moves by more
                    // than the slack, so a busy session does not cost a write per request.
                    let row: Option<SessionRow> = sqlx::query_as(
                        "SELECT token_hash, staff_id, created_at, expires_at, idle_until FROM staff_sessions \
                         WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2 AND idle_until > $2",
                    )
                    .bind(token_hash)
                    .bind(micros(now))
                    .fetch_optional(self.read_pool())
                    .await
                    .map_err(Self::map_err)?;
                    let Some(mut session) = row.map(SessionRow::into_domain).transpose()? else {
                        return Ok(None);
                    };
                    if idle_until - session.idle_until >= $crate::TOUCH_SLACK {
                        let mut tx = self.write_tx().await?;
                        sqlx::query("UPDATE staff_sessions SET idle_until = $2 WHERE token_hash = $1 AND idle_until < $2")
                            .bind(token_hash)
                            .bind(micros(idle_until))
                            .execute(&mut *tx)
                            .await
                            .map_err(Self::map_err)?;
                        tx.commit().await.map_err(Self::map_err)?;
                        session.idle_until = idle_until;
                    }
                    Ok(Some(session))
                }

                async fn revoke_session(&self, token_hash: &str, now: Timestamp) -> StoreResult<()> {
                    let mut tx = self.write_tx().await?;
                    sqlx::query("UPDATE staff_sessions SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL")
                        .bind(token_hash)
                        .bind(micros(now))
                        .execute(&mut *tx)
                        .await
                        .map_err(Self::map_err)?;
                    tx.commit().await.map_err(Self::map_err)
                }

                async fn create_api_key(&self, k: &ApiKeyRecord, audit: &AuditRecord) -> StoreResult<()> {
                    let mut tx = self.write_tx().await?;
                    sqlx::query(&format!("INSERT INTO api_keys ({API_KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"))
                        .bind(k.id.to_string())
                        .bind(k.tenant_id.to_string())
                        .bind(&k.name)
                        .bind(k.role.as_str())
                        .bind(&k.secret_hash)
                        .bind(k.created_by.map(|s| s.to_string()))
                        .bind(micros(k.created_at))
                        .bind(k.last_used_at.map(micros))
                        .bind(k.revoked_at.map(micros))
                        .execute(&mut *tx)
                        .await
                        .map_err(Self::map_err)?;
                    Self::insert_audit(&mut tx, audit).await?;
                    tx.commit().await.map_err(Self::map_err)
                }

                async fn use_api_key(&self, secret_hash: &str, now: Timestamp) -> StoreResult<Option<ApiKeyRecord>> {
                    let row: Option<ApiKeyRow> = sqlx::query_as(&format!(
                        "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE secret_hash = $1 AND revoked_at IS NULL"
                    ))
                    .bind(secret_hash)
                    .fetch_optional(self.read_pool())
                    .await
                    .map_err(Self::map_err)?;
                    let Some(mut key) = row.map(ApiKeyRow::into_domain).transpose()? else {
                        return Ok(None);
                    };
                    // Last use is kept to the minute: a key in constant use costs no write per request.
                    if key.last_used_at.is_none_or(|last| now - last >= $crate::TOUCH_SLACK) {
                        let mut tx = self.write_tx().await?;
                        sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
                            .bind(key.id.to_string())
                            .bind(micros(now))
                            .execute(&mut *tx)
                            .await
                            .map_err(Self::map_err)?;
                        tx.commit().await.map_err(Self::map_err)?;
                        key.last_used_at = Some(now);
                    }
                    Ok(Some(key))
                }

                async fn list_api_keys(&self, tenant: TenantId) -> StoreResult<Vec<ApiKeyRecord>> {
                    let rows: Vec<ApiKeyRow> =
                        sqlx::query_as(&format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY id"))
                            .bind(tenant.to_string())
                            .fetch_all(self.read_pool())
                            .await
                            .map_err(Self::map_err)?;
                    rows.into_iter().map(ApiKeyRow::into_domain).collect()
                }

                async fn revoke_api_key(&self, tenant: TenantId, id: ApiKeyId, audit: &AuditRecord) -> StoreResult<()> {
                    let mut tx = self.write_tx().await?;
                    let done = sqlx::query(
                        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE id = $1 AND tenant_id = $2",
                    )
                    .bind(id.to_string())
                    .bind(tenant.to_string())
                    .bind(micros(audit.at))
                    .execute(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound);
                    }
                    Self::insert_audit(&mut tx, audit).await?;
                    tx.commit().await.map_err(Self::map_err)
                }

                async fn create_customer(&self, c: &Customer, password_hash: Option<&str>, audit: &AuditRecord) -> StoreResult<()> {
                    let keyring = self.keys.get()?;
                    let sealed = sealing::seal_customer(&keyring, c);
                    let mut tx = self.write_tx().await?;
                    let id = c.id.to_string();
                    let tenant = c.tenant_id.to_string();
                    sqlx::query(&format!(
                        "INSERT INTO customers ({CUSTOMER_COLUMNS}, username_bidx, account_number_bidx) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
                    ))
                    .bind(&id)
                    .bind(&tenant)
                    .bind(&c.external_id)
                    .bind(&sealed.sealed)
                    .bind(c.status.as_str())
                    .bind(c.flags.privileged)
                    .bind(c.flags.vip)
                    .bind(password_hash.is_some() || c.factors.password)
                    .bind(c.factors.totp)
                    .bind(i64::from(c.factors.recovery_codes_remaining))
                    .bind(i64::from(c.factors.passkeys))
                    .bind(micros(c.created_at))
                    .bind(micros(c.updated_at))
                    .bind(&sealed.username_bidx)
                    .bind(&sealed.account_number_bidx)
                    .execute(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                    Self::insert_data_key(&mut tx, &keyring.master().id(), &id, "customer", c.tenant_id, &sealed.wrapped_key, c.created_at).await?;
                    for (position, (e, (address, bidx))) in c.emails.iter().zip(&sealed.emails).enumerate() {
                        sqlx::query(
                            "INSERT INTO customer_emails (customer_id, position, tenant_id, address_sealed, address_bidx, verified, added_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        )
                        .bind(&id)
                        .bind(position as i64)
                        .bind(&tenant)
                        .bind(address)
                        .bind(bidx)
                        .bind(e.verified)
                        .bind(micros(e.added_at))
                        .execute(&mut *tx)
                        .await
                        .map_err(Self::map_err)?;
                    }
                    for (position, (p, (number, bidx))) in c.phones.iter().zip(&sealed.phones).enumerate() {
                        sqlx::query(
                            "INSERT INTO customer_phones (customer_id, position, tenant_id, number_sealed, number_bidx, verified, added_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        )
                        .bind(&id)
                        .bind(position as i64)
                        .bind(&tenant)
                        .bind(number)
                        .bind(bidx)
                        .bind(p.verified)
                        .bind(micros(p.added_at))
                        .execute(&mut *tx)
                        .await
                        .map_err(Self::map_err)?;
                    }
                    if let Some(hash) = password_hash {
                        sqlx::query("INSERT INTO customer_credentials (customer_id, password_hash, updated_at) VALUES ($1, $2, $3)")
                            .bind(&id)
                            .bind(hash)
                            .bind(micros(c.created_at))
                            .execute(&mut *tx)
                            .await
                            .map_err(Self::map_err)?;
                    }
                    Self::insert_audit(&mut tx, audit).await?;
                    tx.commit().await.map_err(Self::map_err)
                }

                async fn customer(&self, tenant: TenantId, id: CustomerId) -> StoreResult<Option<Customer>> {
                    let row: Option<CustomerRow> =
                        sqlx::query_as(&format!("SELECT {CUSTOMER_COLUMNS}, {CUSTOMER_KEY} FROM customers WHERE tenant_id = $1 AND id = $2"))
                            .bind(tenant.to_string())
                            .bind(id.to_string())
                            .fetch_optional(self.read_pool())
                            .await
                            .map_err(Self::map_err)?;
                    Ok(self.load_customers(row.into_iter().collect()).await?.pop())
                }

                async fn find_customers(&self, tenant: TenantId, lookup: &CustomerLookup) -> StoreResult<Vec<Customer>> {
                    let keyring = self.keys.get()?;
                    let blind = |field: &str, value: &str| sealing::blind(&keyring, tenant, field, value);
                    let (condition, value) = match lookup {
                        CustomerLookup::ExternalId(v) => ("external_id = $2", v.clone()),
                        CustomerLookup::Username(v) => {
                            ("username_bidx = $2", blind(sealing::field::USERNAME, &sealing::username_norm(v)))
                        }
                        CustomerLookup::AccountNumber(v) => ("account_number_bidx = $2", blind(sealing::field::ACCOUNT_NUMBER, v)),
                        CustomerLookup::Email(e) => (
                            "id IN (SELECT customer_id FROM customer_emails WHERE tenant_id = $1 AND address_bidx = $2)",
                            blind(sealing::field::EMAIL, &e.normalized()),
                        ),
                        CustomerLookup::Phone(p) => (
                            "id IN (SELECT customer_id FROM customer_phones WHERE tenant_id = $1 AND number_bidx = $2)",
                            blind(sealing::field::PHONE, p.as_str()),
                        ),
                    };
                    let rows: Vec<CustomerRow> = sqlx::query_as(&format!(
                        "SELECT {CUSTOMER_COLUMNS}, {CUSTOMER_KEY} FROM customers WHERE tenant_id = $1 AND {condition} ORDER BY id LIMIT 50"
                    ))
                    .bind(tenant.to_string())
                    .bind(value)
                    .fetch_all(self.read_pool())
                    .await
                    .map_err(Self::map_err)?;
                    self.load_customers(rows).await
                }

                async fn set_customer_status(&self, tenant: TenantId, id: CustomerId, status: CustomerStatus, audit: &AuditRecord) -> StoreResult<Customer> {
                    let mut tx = self.write_tx().await?;
                    let done = sqlx::query(
                        "UPDATE customers SET status = $3, updated_at = $4, \
                         failed_logins = CASE WHEN $3 = 'active' THEN 0 ELSE failed_logins END \
                         WHERE tenant_id = $1 AND id = $2",
                    )
                    .bind(tenant.to_string())
                    .bind(id.to_string())
                    .bind(status.as_str())
                    .bind(micros(audit.at))
                    .execute(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound);
                    }
                    Self::insert_audit(&mut tx, audit).await?;
                    tx.commit().await.map_err(Self::map_err)?;
                    self.customer(tenant, id).await?.ok_or(StoreError::NotFound)
                }

                async fn directory_account(&self, tenant: TenantId, username: &str) -> StoreResult<Option<DirectoryAccount>> {
                    let row: Option<(String, String, Option<String>, i64)> = sqlx::query_as(
                        "SELECT c.id, c.status, k.password_hash, c.failed_logins FROM customers c \
                         LEFT JOIN customer_credentials k ON k.customer_id = c.id \
                         WHERE c.tenant_id = $1 AND c.username_bidx = $2",
                    )
                    .bind(tenant.to_string())
                    .bind(sealing::blind(&*self.keys.get()?, tenant, sealing::field::USERNAME, &sealing::username_norm(username)))
                    .fetch_optional(self.read_pool())
                    .await
                    .map_err(Self::map_err)?;
                    row.map(|(id, status, password_hash, failed)| {
                        Ok(DirectoryAccount {
                            customer_id: codec_parse("customers.id", &id, CustomerId::parse)?,
                            status: codec_parse("customers.status", &status, CustomerStatus::parse)?,
                            password_hash,
                            failed_logins: u32::try_from(failed).unwrap_or(u32::MAX),
                        })
                    })
                    .transpose()
                }

                async fn record_login(&self, a: &LoginAttempt, failures_max: u32) -> StoreResult<LoginRecorded> {
                    let mut tx = self.write_tx().await?;
                    let tenant = a.tenant_id.to_string();
                    let customer = a.customer_id.to_string();
                    // A success stands only if the account is active as this is written.
                    let success_status: Option<String> = if a.success {
                        sqlx::query_scalar(
                            "UPDATE customers SET failed_logins = 0 WHERE tenant_id = $1 AND id = $2 AND status = 'active' RETURNING status",
                        )
                        .bind(&tenant)
                        .bind(&customer)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(Self::map_err)?
                    } else {
                        None
                    };
                    let success = success_status.is_some();
                    let status = match success_status {
                        Some(status) => status,
                        None => sqlx::query_scalar(
                            "UPDATE customers SET failed_logins = failed_logins + 1, \
                             status = CASE WHEN status = 'active' AND failed_logins + 1 >= $3 THEN 'locked' ELSE status END, \
                             updated_at = $4 \
                             WHERE tenant_id = $1 AND id = $2 RETURNING status",
                        )
                        .bind(&tenant)
                        .bind(&customer)
                        .bind(i64::from(failures_max))
                        .bind(micros(a.at))
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(Self::map_err)?
                        .ok_or(StoreError::NotFound)?,
                    };
                    sqlx::query(
                        "INSERT INTO customer_logins (tenant_id, customer_id, at, ip, user_agent, success) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&tenant)
                    .bind(&customer)
                    .bind(micros(a.at))
                    .bind(&a.ip)
                    .bind(&a.user_agent)
                    .bind(success)
                    .execute(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                    let record = AuditRecord::new(Some(a.tenant_id), Actor::Customer { id: a.customer_id }, "directory.login", a.at)
                        .customer(a.customer_id)
                        .data($crate::serde_json::json!({"success": success, "status": status}));
                    Self::insert_audit(&mut tx, &record).await?;
                    tx.commit().await.map_err(Self::map_err)?;
                    Ok(LoginRecorded { success, status: codec_parse("customers.status", &status, CustomerStatus::parse)? })
                }

                async fn record_unknown_login(
                    &self,
                    tenant: TenantId,
                    at: Timestamp,
                    ip: Option<&str>,
                    user_agent: Option<&str>,
                ) -> StoreResult<()> {
                    let mut tx = self.write_tx().await?;
                    sqlx::query("INSERT INTO directory_unknown_logins (tenant_id, at, ip, user_agent) VALUES ($1, $2, $3, $4)")
                        .bind(tenant.to_string())
                        .bind(micros(at))
                        .bind(ip)
                        .bind(user_agent)
                        .execute(&mut *tx)
                        .await
                        .map_err(Self::map_err)?;
                    let record = AuditRecord::new(Some(tenant), Actor::System, "directory.login_unknown_user", at);
                    Self::insert_audit(&mut tx, &record).await?;
                    tx.commit().await.map_err(Self::map_err)
                }

                async fn unknown_logins_from(&self, tenant: TenantId, ip: &str, since: Timestamp) -> StoreResult<u64> {
                    let count: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM directory_unknown_logins WHERE tenant_id = $1 AND ip = $2 AND at >= $3",
                    )
                    .bind(tenant.to_string())
                    .bind(ip)
                    .bind(micros(since))
                    .fetch_one(self.read_pool())
                    .await
                    .map_err(Self::map_err)?;
                    Ok(u64::try_from(count).unwrap_or(0))
                }

                async fn login_history(&self, tenant: TenantId, id: CustomerId, limit: u32) -> StoreResult<Vec<LoginAttempt>> {
                    let rows: Vec<LoginRow> = sqlx::query_as(
                        "SELECT tenant_id, customer_id, at, ip, user_agent, success FROM customer_logins \
                         WHERE tenant_id = $1 AND customer_id = $2 ORDER BY at DESC, id DESC LIMIT $3",
                    )
                    .bind(tenant.to_string())
                    .bind(id.to_string())
                    .bind(i64::from(limit))
                    .fetch_all(self.read_pool())
                    .await
                    .map_err(Self::map_err)?;
                    rows.into_iter().map(LoginRow::into_domain).collect()
                }

                async fn create_customer_session(&self, s: &CustomerSessionRecord) -> StoreResult<()> {
                    let mut tx = self.write_tx().await?;
                    sqlx::query(
                        "INSERT INTO customer_sessions (token_hash, tenant_id, customer_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&s.token_hash)
                    .bind(s.tenant_id.to_string())
                    .bind(s.customer_id.to_string())
                    .bind(micros(s.created_at))
                    .bind(micros(s.expires_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                    tx.commit().await.map_err(Self::map_err)
                }

                async fn customer_session(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<CustomerSessionRecord>> {
                    let row: Option<CustomerSessionRow> = sqlx::query_as(
                        "SELECT token_hash, tenant_id, customer_id, created_at, expires_at FROM customer_sessions \
                         WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
                    )
                    .bind(token_hash)
                    .bind(micros(now))
                    .fetch_optional(self.read_pool())
                    .await
                    .map_err(Self::map_err)?;
                    row.map(CustomerSessionRow::into_domain).transpose()
                }

                async fn erase_customer(&self, tenant: TenantId, id: CustomerId, audit: &AuditRecord) -> StoreResult<Erasure> {
                    let (tenant_text, id_text) = (tenant.to_string(), id.to_string());
                    let mut tx = self.write_tx().await?;
                    let found: Option<String> = sqlx::query_scalar("SELECT id FROM customers WHERE tenant_id = $1 AND id = $2")
                        .bind(&tenant_text)
                        .bind(&id_text)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(Self::map_err)?;
                    if found.is_none() {
                        return Err(StoreError::NotFound);
                    }
                    let open: i64 = sqlx::query_scalar(&format!(
                        "SELECT COUNT(*) FROM cases WHERE tenant_id = $1 AND customer_id = $2 AND state NOT IN ({})",
                        Self::terminal_states()
                    ))
                    .bind(&tenant_text)
                    .bind(&id_text)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                    if open > 0 {
                        return Err(StoreError::Precondition(format!(
                            "the customer has {open} case(s) still open; finish or cancel them before erasing the record"
                        )));
                    }
                    // Destroying the keys is the erasure: every sealed copy, in the timelines and
                    // the audit log, becomes unreadable; the rows below only tidy up.
                    let cases = sqlx::query(
                        "DELETE FROM data_keys WHERE subject IN (SELECT id FROM cases WHERE tenant_id = $1 AND customer_id = $2)",
                    )
                    .bind(&tenant_text)
                    .bind(&id_text)
                    .execute(&mut *tx)
                    .await
                    .map_err(Self::map_err)?
                    .rows_affected();
                    // The blind indexes of the requests' IPs, phones and emails go too.
                    sqlx::query("DELETE FROM risk_requests WHERE tenant_id = $1 AND customer_id = $2")
                        .bind(&tenant_text)
                        .bind(&id_text)
                        .execute(&mut *tx)
                        .await
                        .map_err(Self::map_err)?;
                    sqlx::query("UPDATE cases SET summary = NULL WHERE tenant_id = $1 AND customer_id = $2")
                        .bind(&tenant_text)
                        .bind(&id_text)
                        .execute(&mut *tx)
                        .await
                        .map_err(Self::map_err)?;
                    sqlx::query("DELETE FROM data_keys WHERE subject = $1")
                        .bind(&id_text)
                        .execute(&mut *tx)
                        .await
                        .map_err(Self::map_err)?;
                    // Contacts, credentials, sessions and login history go with it (ON DELETE CASCADE).
                    sqlx::query("DELETE FROM customers WHERE tenant_id = $1 AND id = $2")
                        .bind(&tenant_text)
                        .bind(&id_text)
                        .execute(&mut *tx)
                        .await
                        .map_err(Self::map_err)?;
                    let mut audit = audit.clone();
                    audit.customer_id = Some(id);
                    audit.data = $crate::serde_json::json!({"cases": cases});
                    Self::insert_audit(&mut tx, &audit).await?;
                    tx.commit().await.map_err(Self::map_err)?;
                    self.after_erasure().await;
                    Ok(Erasure { cases })
                }

                async fn create_case(&self, case: &Case, events: &[CaseEvent], actor: &Actor) -> StoreResult<()> {
                    self.create_case_in(case, events, actor, None).await
                }

                async fn create_case_with_request(
                    &self,
                    case: &Case,
                    events: &[CaseEvent],
                    actor: &Actor,
                    context: &RequestContext,
                ) -> StoreResult<()> {
                    self.create_case_in(case, events, actor, Some(context)).await
                }

                async fn create_case_with_effects(
                    &self,
                    case: &Case,
                    events: &[CaseEvent],
                    actor: &Actor,
                    context: Option<&RequestContext>,
                    effects: &[Effect],
                ) -> StoreResult<()> {
                    self.create_case_effects(case, events, actor, context, effects).await
                }
                async fn claim_webhooks(&self, now: Timestamp, lease_until: Timestamp, limit: u32) -> StoreResult<Vec<WebhookDelivery>> {
                    self.x_claim_webhooks(now, lease_until, limit).await
                }
                async fn finish_webhook(&self, id: &str, result: &WebhookResult, now: Timestamp) -> StoreResult<()> {
                    self.x_finish_webhook(id, result, now).await
                }
                async fn webhook_deliveries(&self, tenant: TenantId, case: Option<CaseId>, cursor: Option<&str>, limit: u32) -> StoreResult<Vec<WebhookDelivery>> {
                    self.x_webhook_deliveries(tenant, case, cursor, limit).await
                }

                async fn case(&self, tenant: TenantId, id: CaseId) -> StoreResult<Option<Case>> {
                    let row: Option<CaseRow> =
                        sqlx::query_as(&format!("SELECT {CASE_COLUMNS}, {CASE_KEY} FROM cases WHERE tenant_id = $1 AND id = $2"))
                            .bind(tenant.to_string())
                            .bind(id.to_string())
                            .fetch_optional(self.read_pool())
                            .await
                            .map_err(Self::map_err)?;
                    let keyring = self.keys.get()?;
                    row.map(|r| r.into_domain(&keyring)).transpose()
                }

                async fn list_cases(&self, tenant: TenantId, filter: &CaseFilter, page: &PageRequest) -> StoreResult<Page<Case>> {
                    let limit = page.limit.clamp(1, PageRequest::LIMIT_MAX);
                    let mut q: QueryBuilder<'_, Db> = QueryBuilder::new(format!("SELECT {CASE_COLUMNS}, {CASE_KEY} FROM cases WHERE tenant_id = "));
                    q.push_bind(tenant.to_string());
                    if !filter.states.is_empty() {
                        q.push(" AND state IN (");
                        let mut states = q.separated(", ");
                        for s in &filter.states {
                            states.push_bind(s.as_str());
                        }
                        q.push(")");
                    }
                    if let Some(kind) = filter.kind {
                        q.push(" AND kind = ").push_bind(kind.as_str());
                    }
                    if let Some(channel) = filter.channel {
                        q.push(" AND channel = ").push_bind(channel.as_str());
                    }
                    if let Some(tier) = filter.tier {
                        q.push(" AND tier = ").push_bind(i64::from(tier.get()));
                    }
                    match filter.assignee {
                        Some(AssigneeFilter::Unassigned) => {
                            q.push(" AND assignee IS NULL");
                        }
                        Some(AssigneeFilter::Staff(id)) => {
                            q.push(" AND assignee = ").push_bind(id.to_string());
                        }
                        None => {}
                    }
                    if let Some(customer) = filter.customer_id {
                        q.push(" AND customer_id = ").push_bind(customer.to_string());
                    }
                    if let Some(after) = page.after {
                        q.push(" AND id < ").push_bind(after.to_string());
                    }
                    q.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(limit) + 1);
                    let rows: Vec<CaseRow> = q.build_query_as().fetch_all(self.read_pool()).await.map_err(Self::map_err)?;
                    let keyring = self.keys.get()?;
                    let mut items = rows.into_iter().map(|r| r.into_domain(&keyring)).collect::<StoreResult<Vec<_>>>()?;
                    let next_after = if items.len() > limit as usize {
                        items.truncate(limit as usize);
                        items.last().map(|c| c.id)
                    } else {
                        None
                    };
                    Ok(Page { items, next_after })
                }

                async fn customer_cases_in(
                    &self,
                    tenant: TenantId,
                    customer: CustomerId,
                    states: &[CaseState],
                ) -> StoreResult<Vec<CaseBrief>> {
                    let mut conn = self.read_pool().acquire().await.map_err(Self::map_err)?;
                    Self::cases_in(&mut conn, tenant, customer, states).await
                }

                async fn update_case(&self, case: &Case, events: &[CaseEvent], actor: &Actor) -> StoreResult<()> {
                    self.commit_case_change(case, events, actor, &[]).await
                }

                async fn commit_case_change(&self, case: &Case, events: &[CaseEvent], actor: &Actor, effects: &[Effect]) -> StoreResult<()> {
                    let keyring = self.keys.get()?;
                    let mut tx = self.write_tx().await?;
                    let Some(key) = Self::case_key_in(&mut tx, &keyring, case.id).await? else {
                        return Err(StoreError::Precondition(
                            "this case's personal data was erased; it takes no more changes".into(),
                        ));
                    };
                    let update = format!(
                        "UPDATE cases SET ({CASE_COLUMNS}) = \
                         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25) \
                         WHERE id = $1 AND tenant_id = $2 AND version = $26"
                    );
                    let done = Self::bind_case(sqlx::query(&update), case, Some(&key))
                        .bind(case.version - 1)
                        .execute(&mut *tx)
                        .await
                        .map_err(Self::map_err)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::Conflict);
                    }
                    Self::append_events(&mut tx, case, &key, events, actor).await?;
                    Self::apply_effects_in(&mut tx, &keyring, case.updated_at, effects).await?;
                    tx.commit().await.map_err(Self::map_err)
                }

                async fn claim_actions(&self, now: Timestamp, lease_until: Timestamp, limit: u32) -> StoreResult<Vec<ClaimedAction>> {
                    self.x_claim_actions(now, lease_until, limit).await
                }
                async fn retry_action(&self, id: &str, at: Timestamp, error: &str) -> StoreResult<()> {
                    self.x_retry_action(id, at, error, true).await
                }
                async fn defer_action(&self, id: &str, at: Timestamp, reason: &str) -> StoreResult<()> {
                    self.x_retry_action(id, at, reason, false).await
                }
                async fn apply_effects(&self, at: Timestamp, effects: &[Effect]) -> StoreResult<()> {
                    let keyring = self.keys.get()?;
                    let mut tx = self.write_tx().await?;
                    Self::apply_effects_in(&mut tx, &keyring, at, effects).await?;
                    tx.commit().await.map_err(Self::map_err)
                }
                async fn fail_action(&self, id: &str, error: &str, at: Timestamp) -> StoreResult<()> {
                    let mut tx = self.write_tx().await?;
                    let fail = Effect::FailAction { id: id.to_owned(), error: error.to_owned() };
                    match Self::apply_effect(&mut tx, &*self.keys.get()?, at, &fail).await {
                        // Already done or failed: nothing to give up.
                        Ok(()) | Err(StoreError::Conflict) => {}
                        Err(e) => return Err(e),
                    }
                    tx.commit().await.map_err(Self::map_err)
                }
                async fn case_actions(&self, tenant: TenantId, case: CaseId) -> StoreResult<Vec<ActionEntry>> {
                    self.x_case_actions(tenant, case).await
                }
                async fn customer_link(&self, token: &str) -> StoreResult<Option<CustomerLink>> {
                    self.x_customer_link(token).await
                }
                async fn used_links(
                    &self,
                    tenant: TenantId,
                    customer: CustomerId,
                    purpose: LinkPurpose,
                    since: Timestamp,
                ) -> StoreResult<Vec<CustomerLink>> {
                    let rows: Vec<$crate::recovery::LinkRow> = sqlx::query_as(
                        "SELECT id, purpose, tenant_id, case_id, customer_id, destination, expires_at, used_at FROM customer_links \
                         WHERE customer_id = $2 AND purpose = $3 AND used_at >= $4 AND tenant_id = $1 ORDER BY used_at DESC LIMIT 100",
                    )
                    .bind(tenant.to_string())
                    .bind(customer.to_string())
                    .bind(purpose.as_str())
                    .bind(micros(since))
                    .fetch_all(self.read_pool())
                    .await
                    .map_err(Self::map_err)?;
                    rows.into_iter().map($crate::recovery::LinkRow::into_domain).collect()
                }
                async fn contact_change(&self, tenant: TenantId, case: CaseId) -> StoreResult<Option<ContactChange>> {
                    self.x_contact_change(tenant, case).await
                }
                async fn contact_change_values(&self, tenant: TenantId, id: &str) -> StoreResult<Option<(String, Vec<(String, bool)>)>> {
                    self.x_contact_change_values(tenant, id).await
                }
                async fn recent_contact_changes(
                    &self,
                    tenant: TenantId,
                    customer: CustomerId,
                    since: Timestamp,
                ) -> StoreResult<Vec<ContactChange>> {
                    self.x_recent_contact_changes(tenant, customer, since).await
                }
                async fn confirm_contact_change(
                    &self,
                    case: &Case,
                    code: &str,
                    ctx: &AttemptContext,
                    limit: &FailureLimit,
                ) -> StoreResult<ContactConfirm> {
                    self.x_confirm_contact_change(case, code, ctx, limit).await
                }
                async fn last_action_end(
                    &self,
                    tenant: TenantId,
                    customer: CustomerId,
                    action: ActionKind,
                    failed_too: bool,
                ) -> StoreResult<Option<Timestamp>> {
                    let at: Option<i64> = sqlx::query_scalar(
                        "SELECT MAX(done_at) FROM recovery_actions WHERE tenant_id = $1 AND customer_id = $2 \
                         AND action = $3 AND (state = 'done' OR ($4 AND state = 'failed'))",
                    )
                    .bind(tenant.to_string())
                    .bind(customer.to_string())
                    .bind(action.as_str())
                    .bind(failed_too)
                    .fetch_one(self.read_pool())
                    .await
                    .map_err(Self::map_err)?;
                    Ok(at.map($crate::regain_store::codec::timestamp))
                }
                async fn action_pending(
                    &self,
                    tenant: TenantId,
                    customer: CustomerId,
                    action: ActionKind,
                ) -> StoreResult<bool> {
                    // Among the pending actions only (the due index), never the whole history.
                    sqlx::query_scalar(
                        "SELECT EXISTS (SELECT 1 FROM recovery_actions WHERE state = 'pending' AND tenant_id = $1 \
                         AND customer_id = $2 AND action = $3)",
                    )
                    .bind(tenant.to_string())
                    .bind(customer.to_string())
                    .bind(action.as_str())
                    .fetch_one(self.read_pool())
                    .await
                    .map_err(Self::map_err)
                }
                async fn factor_times(&self, tenant: TenantId, customer: CustomerId) -> StoreResult<FactorTimes> {
                    self.x_factor_times(tenant, customer).await
                }

                async fn timeline(&self, tenant: TenantId, id: CaseId) -> StoreResult<Vec<TimelineEntry>> {
                    let rows: Vec<EventRow> = sqlx::query_as(
                        "SELECT case_id, seq, at, actor, event_type, data, state_after FROM case_events \
                         WHERE tenant_id = $1 AND case_id = $2 ORDER BY seq",
                    )
                    .bind(tenant.to_string())
                    .bind(id.to_string())
                    .fetch_all(self.read_pool())
                    .await
                    .map_err(Self::map_err)?;
                    if rows.is_empty() {
                        return Ok(Vec::new());
                    }
                    let keyring = self.keys.get()?;
                    let wrapped: Option<Vec<u8>> = sqlx::query_scalar("SELECT wrapped FROM data_keys WHERE subject = $1")
                        .bind(id.to_string())
                        .fetch_optional(self.read_pool())
                        .await
                        .map_err(Self::map_err)?;
                    let key = sealing::case_key(&keyring, id, wrapped.as_deref())?;
                    rows.into_iter().map(|r| r.into_domain(key.as_ref())).collect()
                }

                async fn purge_closed_cases(
                    &self,
                    tenant: TenantId,
                    closed_before: Timestamp,
                    limit: u32,
                    now: Timestamp,
                ) -> StoreResult<Vec<CaseId>> {
                    let terminal = Self::terminal_states();
                    let mut tx = self.write_tx().await?;
                    let ids: Vec<(String, Option<String>, String)> = sqlx::query_as(&format!(
                        "SELECT id, customer_id, state FROM cases WHERE tenant_id = $1 AND state IN ({terminal}) AND updated_at <= $2 \
                         ORDER BY updated_at LIMIT $3"
                    ))
                    .bind(tenant.to_string())
                    .bind(micros(closed_before))
                    .bind(i64::from(limit))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                    let mut purged = Vec::with_capacity(ids.len());
                    for (id, customer_id, state) in ids {
                        for statement in [
                            "DELETE FROM data_keys WHERE subject = $1",
                            "DELETE FROM recovery_actions WHERE case_id = $1",
                            "DELETE FROM customer_links WHERE case_id = $1",
                            "DELETE FROM webhook_deliveries WHERE case_id = $1",
                            "DELETE FROM case_events WHERE case_id = $1",
                            "DELETE FROM cases WHERE id = $1",
                        ] {
                            sqlx::query(statement).bind(&id).execute(&mut *tx).await.map_err(Self::map_err)?;
                        }
                        let case_id = codec_parse("cases.id", &id, CaseId::parse)?;
                        let mut record = AuditRecord::new(Some(tenant), Actor::System, "retention.case_purged", now);
                        record.case_id = Some(case_id);
                        record.customer_id =
                            customer_id.as_deref().map(|c| codec_parse("cases.customer_id", c, CustomerId::parse)).transpose()?;
                        record.data = $crate::serde_json::json!({"state": state, "closed_before": micros(closed_before)});
                        Self::insert_audit(&mut tx, &record).await?;
                        purged.push(case_id);
                    }
                    // The report links no case stands behind (a notice of a new sign-in
                    // method) go once they expired before the same cut-off.
                    sqlx::query(
                        "DELETE FROM customer_links WHERE tenant_id = $1 AND case_id IS NULL AND expires_at <= $2",
                    )
                    .bind(tenant.to_string())
                    .bind(micros(closed_before))
                    .execute(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                    tx.commit().await.map_err(Self::map_err)?;
                    if !purged.is_empty() {
                        self.after_erasure().await;
                    }
                    Ok(purged)
                }

                async fn cases_to_expire(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<Case>> {
                    let before_execution: Vec<String> = CaseState::ALL
                        .iter()
                        .filter(|s| s.is_before_execution())
                        .map(|s| format!("'{}'", s.as_str()))
                        .collect();
                    let rows: Vec<CaseRow> = sqlx::query_as(&format!(
                        "SELECT {CASE_COLUMNS}, {CASE_KEY} FROM cases WHERE state IN ({}) AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
                        before_execution.join(", ")
                    ))
                    .bind(micros(now))
                    .bind(i64::from(limit))
                    .fetch_all(self.read_pool())
                    .await
                    .map_err(Self::map_err)?;
                    let keyring = self.keys.get()?;
                    rows.into_iter().map(|r| r.into_domain(&keyring)).collect()
                }

                async fn sequence_audit(
                    &self,
                    batch_max: u32,
                    now: Timestamp,
                    signer: &dyn CheckpointSigner,
                ) -> StoreResult<Option<StoredCheckpoint>> {
                    let mut tx = self.write_tx().await?;
                    // First a write to the one sequencer row: whoever holds it sequences; any
                    // other sequencer (another process) waits here until this commits.
                    sqlx::query("INSERT INTO audit_sequencer (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = $1")
                        .bind(micros(now))
                        .execute(&mut *tx)
                        .await
                        .map_err(Self::map_err)?;
                    let size: Option<i64> = sqlx::query_scalar("SELECT MAX(size) FROM audit_checkpoints")
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(Self::map_err)?;
                    let size = u64::try_from(size.unwrap_or(0)).unwrap_or(0);
                    let base = i64::try_from(size).unwrap_or(i64::MAX);
                    // (id, or the position already taken; the entry's text), in log order.
                    let batch = i64::from(batch_max.max(1));
                    let pending: Vec<(i64, String)> = if $at_write {
                        sqlx::query_as("SELECT seq, entry FROM audit_entries WHERE seq >= $1 ORDER BY seq LIMIT $2").bind(base).bind(batch)
                    } else {
                        sqlx::query_as("SELECT id, entry FROM audit_entries WHERE seq IS NULL ORDER BY id LIMIT $1").bind(batch)
                    }
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(Self::map_err)?;
                    if pending.is_empty() {
                        tx.rollback().await.map_err(Self::map_err)?;
                        return Ok(None);
                    }
                    if $at_write && pending.iter().enumerate().any(|(i, (seq, _))| *seq != base + i as i64) {
                        return Err(StoreError::Corrupt(format!("audit_entries: positions after {size} are not contiguous")));
                    }
                    let frontier_ids = $crate::regain_merkle::frontier(size);
                    let stored = Self::read_nodes(&mut *tx, &frontier_ids).await?;
                    let frontier = frontier_ids
                        .iter()
                        .map(|id| stored.get(id).copied().ok_or_else(|| StoreError::Corrupt(format!("audit node {id:?} is missing"))))
                        .collect::<StoreResult<Vec<_>>>()?;
                    let leaves: Vec<[u8; 32]> = pending.iter().map(|(_, entry)| $crate::regain_merkle::leaf_hash(entry.as_bytes())).collect();
                    let appended = $crate::regain_merkle::append(size, &frontier, &leaves)
                        .map_err(|e| StoreError::Corrupt(format!("audit tree: {e}")))?;
                    // Positions (unless taken at write): one ranged statement when the batch's
                    // ids are contiguous (the usual case), one per entry otherwise.
                    if !$at_write {
                        let first_id = pending.first().map_or(0, |(id, _)| *id);
                        let last_id = pending.last().map_or(0, |(id, _)| *id);
                        if usize::try_from(last_id - first_id + 1).ok() == Some(pending.len()) {
                            sqlx::query("UPDATE audit_entries SET seq = id - $1 + $2 WHERE id >= $1 AND id <= $3")
                                .bind(first_id)
                                .bind(base)
                                .bind(last_id)
                                .execute(&mut *tx)
                                .await
                                .map_err(Self::map_err)?;
                        } else {
                            for (offset, (id, _)) in pending.iter().enumerate() {
                                sqlx::query("UPDATE audit_entries SET seq = $2 WHERE id = $1")
                                    .bind(id)
                                    .bind(base + offset as i64)
                                    .execute(&mut *tx)
                                    .await
                                    .map_err(Self::map_err)?;
                            }
                        }
                    }
                    Self::write_tiles(&mut tx, &appended.nodes).await?;
                    let checkpoint = StoredCheckpoint {
                        size: appended.size,
                        root: appended.root,
                        note: signer
                            .sign(appended.size, &appended.root)
                            .map_err(|e| StoreError::Other(format!("signing the checkpoint: {e}")))?,
                        at: now,
                    };
                    sqlx::query("INSERT INTO audit_checkpoints (size, root, note, at) VALUES ($1, $2, $3, $4)")
                        .bind(i64::try_from(checkpoint.size).unwrap_or(i64::MAX))
                        .bind(checkpoint.root.as_slice())
                        .bind(&checkpoint.note)
                        .bind(micros(now))
                        .execute(&mut *tx)
                        .await
                        .map_err(Self::map_err)?;
                    tx.commit().await.map_err(Self::map_err)?;
                    Ok(Some(checkpoint))
                }

                async fn latest_checkpoint(&self) -> StoreResult<Option<StoredCheckpoint>> {
                    let row: Option<CheckpointRow> =
                        sqlx::query_as("SELECT size, root, note, at FROM audit_checkpoints ORDER BY size DESC LIMIT 1")
                            .fetch_optional(self.read_pool())
                            .await
                            .map_err(Self::map_err)?;
                    row.map(CheckpointRow::into_domain).transpose()
                }

                async fn checkpoint(&self, size: u64) -> StoreResult<Option<StoredCheckpoint>> {
                    let row: Option<CheckpointRow> =
                        sqlx::query_as("SELECT size, root, note, at FROM audit_checkpoints WHERE size = $1")
                            .bind(i64::try_from(size).unwrap_or(i64::MAX))
                            .fetch_optional(self.read_pool())
                            .await
                            .map_err(Self::map_err)?;
                    row.map(CheckpointRow::into_domain).transpose()
                }

                async fn checkpoints(&self, from_size: u64, limit: u32) -> StoreResult<Vec<StoredCheckpoint>> {
                    let rows: Vec<CheckpointRow> = sqlx::query_as(
                        "SELECT size, root, note, at FROM audit_checkpoints WHERE size >= $1 ORDER BY size LIMIT $2",
                    )
                    .bind(i64::try_from(from_size).unwrap_or(i64::MAX))
                    .bind(i64::from(limit))
                    .fetch_all(self.read_pool())
                    .await
                    .map_err(Self::map_err)?;
                    rows.into_iter().map(CheckpointRow::into_domain).collect()
                }

                async fn audit_entry(&self, seq: u64) -> StoreResult<Option<AuditEntry>> {
                    let row: Option<AuditEntryRow> = sqlx::query_as(
                        "SELECT seq, tenant_id, at, action, case_id, customer_id, entry FROM audit_entries \
                         WHERE seq = $1 AND seq < (SELECT COALESCE(MAX(size), 0) FROM audit_checkpoints)",
                    )
                    .bind(i64::try_from(seq).unwrap_or(i64::MAX))
                    .fetch_optional(self.read_pool())
                    .await
                    .map_err(Self::map_err)?;
                    row.map(AuditEntryRow::into_domain).transpose()
                }

                async fn audit_entries(&self, from_seq: u64, limit: u32) -> StoreResult<Vec<AuditEntry>> {
                    let rows: Vec<AuditEntryRow> = sqlx::query_as(
                        "SELECT seq, tenant_id, at, action, case_id, customer_id, entry FROM audit_entries \
                         WHERE seq >= $1 AND seq < (SELECT COALESCE(MAX(size), 0) FROM audit_checkpoints) \
                         ORDER BY seq LIMIT $2",
                    )
                    .bind(i64::try_from(from_seq).unwrap_or(i64::MAX))
                    .bind(i64::from(limit))
                    .fetch_all(self.read_pool())
                    .await
                    .map_err(Self::map_err)?;
                    rows.into_iter().map(AuditEntryRow::into_domain).collect()
                }

                async fn audit_entries_for_customer(
                    &self,
                    tenant: TenantId,
                    customer: CustomerId,
                    limit: u32,
                ) -> StoreResult<Vec<AuditEntry>> {
                    let rows: Vec<AuditEntryRow> = sqlx::query_as(
                        "SELECT seq, tenant_id, at, action, case_id, customer_id, entry FROM audit_entries \
                         WHERE customer_id = $1 AND tenant_id = $2 ORDER BY id LIMIT $3",
                    )
                    .bind(customer.to_string())
                    .bind(tenant.to_string())
                    .bind(i64::from(limit))
                    .fetch_all(self.read_pool())
                    .await
                    .map_err(Self::map_err)?;
                    rows.into_iter().map(AuditEntryRow::into_domain).collect()
                }

                async fn record_audit(&self, record: &AuditRecord) -> StoreResult<()> {
                    let mut tx = self.write_tx().await?;
                    Self::insert_audit(&mut tx, record).await?;
                    tx.commit().await.map_err(Self::map_err)
                }

                async fn unsequenced_audit_entries(&self) -> StoreResult<u64> {
                    let count: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM audit_entries \
                         WHERE seq IS NULL OR seq >= (SELECT COALESCE(MAX(size), 0) FROM audit_checkpoints)",
                    )
                        .fetch_one(self.read_pool())
                        .await
                        .map_err(Self::map_err)?;
                    Ok(u64::try_from(count).unwrap_or(0))
                }

                async fn audit_nodes(&self, ids: &[NodeId]) -> StoreResult<std::collections::HashMap<NodeId, [u8; 32]>> {
                    let mut conn = self.read_pool().acquire().await.map_err(Self::map_err)?;
                    Self::read_nodes(&mut *conn, ids).await
                }

                async fn assurance_policy(&self, tenant: TenantId, version: Option<i64>) -> StoreResult<Option<StoredPolicy>> {
                    if version.is_some() {
                        return self.v_assurance_policy(tenant, version).await;
                    }
                    if let Some(current) = self.cache.policy(tenant) {
                        return Ok(current);
                    }
                    let read = $crate::cache::ReadCache::reading();
                    let current = self.v_assurance_policy(tenant, None).await?;
                    self.cache.keep_policy(tenant, read, &current);
                    Ok(current)
                }
                async fn assurance_policy_versions(&self, tenant: TenantId) -> StoreResult<Vec<StoredPolicy>> {
                    self.v_assurance_policy_versions(tenant).await
                }
                async fn save_assurance_policy(&self, tenant: TenantId, document: &str, base_version: Option<i64>, actor: &Actor, at: Timestamp) -> StoreResult<StoredPolicy> {
                    let saved = self.v_save_assurance_policy(tenant, document, base_version, actor, at).await;
                    self.cache.changed(tenant);
                    saved
                }
                async fn issue_challenge(&self, case: &Case, challenge: &NewChallenge, secret: &str, message: &NewMessage, events: &[CaseEvent], actor: &Actor) -> StoreResult<()> {
                    self.v_issue_challenge(case, challenge, secret, message, events, actor).await
                }
                async fn redeem_code(&self, case: &Case, code: &str, ctx: &AttemptContext, limit: &FailureLimit) -> StoreResult<Redeemed> {
                    self.v_redeem_code(case, code, ctx, limit).await
                }
                async fn link_challenge(&self, token: &str) -> StoreResult<Option<LinkChallenge>> {
                    self.v_link_challenge(token).await
                }
                async fn answer_link(&self, case: &Case, token: &str, approve: bool, ctx: &AttemptContext) -> StoreResult<LinkAnswer> {
                    self.v_answer_link(case, token, approve, ctx).await
                }
                async fn record_attempt(&self, case: &Case, customer: Option<CustomerId>, attempt: &NewAttempt, ctx: &AttemptContext, events: &[CaseEvent], messages: &[NewMessage], limit: &FailureLimit, consume: Option<&Consume>) -> StoreResult<AttemptRecorded> {
                    self.v_record_attempt(case, customer, attempt, ctx, events, messages, limit, consume).await
                }
                async fn verification_attempts(&self, tenant: TenantId, case: CaseId) -> StoreResult<Vec<VerificationAttempt>> {
                    self.v_verification_attempts(tenant, case).await
                }
                async fn recovery_hold(&self, tenant: TenantId, customer: CustomerId, now: Timestamp) -> StoreResult<Option<RecoveryHold>> {
                    self.v_recovery_hold(tenant, customer, now).await
                }
                async fn recovery_holds(&self, now: Timestamp) -> StoreResult<Vec<(TenantId, CustomerId, Timestamp)>> {
                    use $crate::regain_store::codec::{parse_column, timestamp};
                    let rows: Vec<(String, String, i64)> =
                        sqlx::query_as("SELECT tenant_id, customer_id, until FROM recovery_holds WHERE until > $1 ORDER BY until")
                            .bind(micros(now))
                            .fetch_all(self.read_pool())
                            .await
                            .map_err(Self::map_err)?;
                    rows.into_iter()
                        .map(|(t, c, until)| {
                            Ok((
                                parse_column("recovery_holds.tenant_id", &t, TenantId::parse)?,
                                parse_column("recovery_holds.customer_id", &c, CustomerId::parse)?,
                                timestamp(until),
                            ))
                        })
                        .collect()
                }
                async fn failures_since(&self, tenant: TenantId, customer: CustomerId, since: Timestamp) -> StoreResult<u32> {
                    self.v_failures_since(tenant, customer, since).await
                }

                async fn record_request(
                    &self,
                    tenant: TenantId,
                    case: CaseId,
                    at: Timestamp,
                    customer: Option<CustomerId>,
                    context: &RequestContext,
                ) -> StoreResult<()> {
                    self.r_record_request(tenant, case, at, customer, context).await
                }

                async fn risk_history(
                    &self,
                    tenant: TenantId,
                    case: CaseId,
                    customer: Option<CustomerId>,
                    windows: &RiskWindows,
                    now: Timestamp,
                ) -> StoreResult<RiskHistory> {
                    self.r_risk_history(tenant, case, customer, windows, now).await
                }

                async fn request_hours(&self, tenant: TenantId, since: Timestamp) -> StoreResult<[u32; 24]> {
                    self.r_request_hours(tenant, since).await
                }
                async fn begin_totp_enrollment(&self, tenant: TenantId, customer: CustomerId, secret: &[u8], audit: &AuditRecord) -> StoreResult<()> {
                    self.v_begin_totp_enrollment(tenant, customer, secret, audit).await
                }
                async fn customer_totp(&self, tenant: TenantId, customer: CustomerId) -> StoreResult<Option<CustomerTotp>> {
                    self.v_customer_totp(tenant, customer).await
                }
                async fn claim_customer_totp_step(&self, tenant: TenantId, customer: CustomerId, step: i64, audit: Option<&AuditRecord>) -> StoreResult<bool> {
                    self.v_claim_customer_totp_step(tenant, customer, step, audit).await
                }
                async fn replace_recovery_codes(
                    &self,
                    tenant: TenantId,
                    customer: CustomerId,
                    codes: &[String],
                    unless_issued_after: Option<Timestamp>,
                    audit: &AuditRecord,
                ) -> StoreResult<()> {
                    self.v_replace_recovery_codes(tenant, customer, codes, unless_issued_after, audit).await
                }
                async fn recovery_codes_left(&self, tenant: TenantId, customer: CustomerId, issued_by: Timestamp) -> StoreResult<u32> {
                    let n: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM customer_recovery_codes \
                         WHERE tenant_id = $1 AND customer_id = $2 AND used_at IS NULL AND created_at <= $3",
                    )
                    .bind(tenant.to_string())
                    .bind(customer.to_string())
                    .bind(micros(issued_by))
                    .fetch_one(self.read_pool())
                    .await
                    .map_err(Self::map_err)?;
                    Ok(u32::try_from(n).unwrap_or(u32::MAX))
                }
                async fn recovery_code_issued_at(&self, tenant: TenantId, customer: CustomerId, code: &str) -> StoreResult<Option<Timestamp>> {
                    let keyring = self.keys.get()?;
                    let hash = $crate::verification::recovery_code_hash(&keyring, tenant, customer, code);
                    let issued: Option<i64> = sqlx::query_scalar(
                        "SELECT created_at FROM customer_recovery_codes \
                         WHERE tenant_id = $1 AND customer_id = $2 AND code_hash = $3 AND used_at IS NULL",
                    )
                    .bind(tenant.to_string())
                    .bind(customer.to_string())
                    .bind(&hash)
                    .fetch_optional(self.read_pool())
                    .await
                    .map_err(Self::map_err)?;
                    Ok(issued.map($crate::regain_store::codec::timestamp))
                }
                async fn set_knowledge_answer(&self, tenant: TenantId, customer: CustomerId, question: &str, answer_hash: &str, audit: &AuditRecord) -> StoreResult<()> {
                    self.v_set_knowledge_answer(tenant, customer, question, answer_hash, audit).await
                }
                async fn knowledge_answers(&self, tenant: TenantId, customer: CustomerId) -> StoreResult<Vec<(String, String)>> {
                    self.v_knowledge_answers(tenant, customer).await
                }
                async fn message_templates(&self, tenant: TenantId) -> StoreResult<Vec<StoredTemplate>> {
                    if let Some(templates) = self.cache.templates(tenant) {
                        return Ok(templates);
                    }
                    let read = $crate::cache::ReadCache::reading();
                    let templates = self.v_message_templates(tenant).await?;
                    self.cache.keep_templates(tenant, read, &templates);
                    Ok(templates)
                }
                async fn set_message_template(&self, tenant: TenantId, template: &StoredTemplate, audit: &AuditRecord) -> StoreResult<()> {
                    let set = self.v_set_message_template(tenant, template, audit).await;
                    self.cache.changed(tenant);
                    set
                }
                async fn delete_message_template(&self, tenant: TenantId, name: &str, channel: &str, audit: &AuditRecord) -> StoreResult<bool> {
                    let deleted = self.v_delete_message_template(tenant, name, channel, audit).await;
                    self.cache.changed(tenant);
                    deleted
                }
                async fn enqueue_message(&self, message: &NewMessage) -> StoreResult<()> {
                    self.v_enqueue_message(message).await
                }
                async fn claim_messages(&self, now: Timestamp, lease_until: Timestamp, limit: u32) -> StoreResult<Vec<OutboxMessage>> {
                    self.v_claim_messages(now, lease_until, limit).await
                }
                async fn finish_messages(&self, results: &[(String, DeliveryResult)], now: Timestamp) -> StoreResult<()> {
                    self.v_finish_messages(results, now).await
                }
                async fn outbox_for_case(&self, tenant: TenantId, case: CaseId) -> StoreResult<Vec<OutboxEntry>> {
                    self.v_outbox_for_case(tenant, case).await
                }
            }

            $crate::impl_sql_verification!($store, $at_write);
            $crate::impl_sql_risk!($store);
            $crate::impl_sql_recovery!($store, $at_write);

            fn codec_parse<T>(
                what: &str,
                value: &str,
                parse: impl FnOnce(&str, &str) -> Result<T, $crate::regain_core::ValidationError>,
            ) -> StoreResult<T> {
                $crate::regain_store::codec::parse_column(what, value, parse)
            }
        };
    };
}
