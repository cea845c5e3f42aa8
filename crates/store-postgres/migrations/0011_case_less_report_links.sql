-- A "this wasn't me" link in the notice of a change the customer made themselves (a new
-- sign-in method, SECURITY.md P3) has no case behind it: customer_links.case_id becomes
-- nullable.
ALTER TABLE customer_links ALTER COLUMN case_id DROP NOT NULL;
