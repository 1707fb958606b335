-- Notices to the member states that received a firm's record of the fields they may no longer hold (a
-- withdrawal, an expiry, or a firm PLGN no longer lists): under the data-sharing agreement each state
-- deletes its copies and acknowledges the notice. Written by the directory's writer in the transaction
-- that ends the authorisation. `through_seq` is the last access-log row the notice accounts for: a
-- field delivered again after it is noticed again when it is lost again.
CREATE TABLE {schema}.withdrawal_notice (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_state    text        NOT NULL,
    org_ref         text        NOT NULL,
    fields          text[]      NOT NULL,
    whole_record    boolean     NOT NULL,
    through_seq     bigint      NOT NULL,
    noticed_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    acknowledged_at timestamptz,
    acknowledged_by text
);
CREATE INDEX ON {schema}.withdrawal_notice (member_state, id);
CREATE INDEX ON {schema}.withdrawal_notice (org_ref, member_state);
-- Which states received a firm: the access log by firm reference.
CREATE INDEX access_log_org_refs ON {schema}.access_log USING gin (org_refs);

ALTER TABLE {schema}.withdrawal_notice ENABLE ROW LEVEL SECURITY;
ALTER TABLE {schema}.withdrawal_notice FORCE ROW LEVEL SECURITY;
-- A member state reads and acknowledges its own notices only; the writer keeps them all.
CREATE POLICY notice_for_state ON {schema}.withdrawal_notice FOR SELECT
    USING (member_state = {schema}.requesting_member());
CREATE POLICY notice_acknowledged_by_state ON {schema}.withdrawal_notice FOR UPDATE
    USING (member_state = {schema}.requesting_member())
    WITH CHECK (member_state = {schema}.requesting_member());
CREATE POLICY notice_writer ON {schema}.withdrawal_notice FOR ALL TO alcance_directory_writer
    USING (true) WITH CHECK (true);

-- GOV-02, withdrawal propagation: per member state and month of notice, the notices, those acknowledged,
-- and the median and longest hours from notice to acknowledgement. Read with the reader's own policies.
CREATE VIEW {schema}.indicator_withdrawal_propagation WITH (security_invoker = true) AS
    SELECT member_state, date_trunc('month', noticed_at AT TIME ZONE 'UTC')::date AS month,
           count(*) AS notices, count(acknowledged_at) AS acknowledged,
           percentile_cont(0.5) WITHIN GROUP (
               ORDER BY extract(epoch FROM acknowledged_at - noticed_at)::float8 / 3600) AS median_hours,
           max(extract(epoch FROM acknowledged_at - noticed_at)::float8 / 3600) AS max_hours
      FROM {schema}.withdrawal_notice
     GROUP BY 1, 2;
