-- A customer's cases, newest first (the holds of SECURITY.md G5 read them before every step
-- toward an action and before a reset link takes a password): with only (tenant_id,
-- customer_id), the planner chose (tenant_id, id) for the order and walked every case of the
-- tenant. The new index serves the filter and the order; the old one is its prefix.
CREATE INDEX cases_customer_id_idx ON cases (tenant_id, customer_id, id);
DROP INDEX cases_customer_idx;
-- A customer's links by purpose: a lockdown ends the unused ones, and its review lists the
-- reset links used within its window (a password set in the tenant's account system).
CREATE INDEX customer_links_customer_idx ON customer_links (customer_id, purpose, used_at);
