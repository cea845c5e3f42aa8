-- A "this wasn't me" on a contact change while it is being made in the tenant's account
-- system (SECURITY.md G5): it cannot be cancelled then, but it is recorded on the change, so
-- that if the account system did not take it, it is cancelled rather than given back to be
-- made at the next release.
ALTER TABLE contact_changes ADD COLUMN reported_at INTEGER;
