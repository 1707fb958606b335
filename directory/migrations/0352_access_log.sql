-- The access log: one row per directory read or denial, written in the read's transaction. Append-only
-- for everyone (owner and superuser included: triggers refuse UPDATE, DELETE and TRUNCATE) and
-- hash-chained: hash = sha256(prev_hash || the row's canonical text), computed under a lock so the
-- chain follows `seq`.
CREATE TABLE {schema}.access_log (
    seq          bigint      PRIMARY KEY,
    at           timestamptz NOT NULL,
    client_id    text        NOT NULL,
    role         text        NOT NULL,
    member_state text,
    request_id   text,
    query        jsonb       NOT NULL,
    org_refs     text[]      NOT NULL,
    fields       text[]      NOT NULL,
    outcome      text        NOT NULL CHECK (outcome IN ('granted', 'denied', 'withdrawal')),
    prev_hash    bytea       NOT NULL,
    hash         bytea       NOT NULL
);

CREATE FUNCTION {schema}.access_row_text(r {schema}.access_log) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_array(r.seq, to_char(r.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                             r.client_id, r.role, r.member_state, r.request_id, r.query, r.org_refs,
                             r.fields, r.outcome)::text
$$;

CREATE FUNCTION {schema}.chain_access_row() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
DECLARE
    last access_log;
BEGIN
    -- One writer at a time per schema, until its transaction ends: the chain follows `seq`.
    PERFORM pg_advisory_xact_lock(hashtext('alcance.directory.access_log.' || TG_TABLE_SCHEMA));
    SELECT * INTO last FROM access_log ORDER BY seq DESC LIMIT 1;
    NEW.seq := coalesce(last.seq, 0) + 1;
    NEW.at := clock_timestamp();
    NEW.prev_hash := coalesce(last.hash, '\x'::bytea);
    NEW.hash := sha256(NEW.prev_hash || convert_to(access_row_text(NEW), 'UTF8'));
    RETURN NEW;
END $$;
CREATE TRIGGER access_log_chain BEFORE INSERT ON {schema}.access_log
    FOR EACH ROW EXECUTE FUNCTION {schema}.chain_access_row();
CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON {schema}.access_log
    FOR EACH ROW EXECUTE FUNCTION {schema}.refuse_change();
CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON {schema}.access_log
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.refuse_change();
