-- The consent ledger (art. 8): every grant, renewal, refusal, withdrawal and expiry of a directory
-- authorisation, append-only, shaped on ISO/IEC TS 27560 with W3C DPV status terms. `recipients` is
-- what the consent covers after the entry (empty once it no longer holds); the current authorisation
-- of a consent is its latest entry. Firms and people are named by their keyed pseudonyms only.
CREATE TABLE {schema}.member_state (iso2 char(2) PRIMARY KEY);
INSERT INTO {schema}.member_state (iso2) VALUES
    ('AR'), ('BO'), ('BR'), ('CL'), ('CO'), ('CU'), ('EC'), ('MX'), ('PA'), ('PY'), ('PE'), ('UY'), ('VE');

CREATE TABLE {schema}.consent_event (
    seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consent_ref    text        NOT NULL,
    org_ref        text        NOT NULL,
    subject_kind   text        NOT NULL CHECK (subject_kind IN ('ORG', 'PERSON')),
    subject_ref    text        NOT NULL,
    status         text        NOT NULL CHECK (status IN (
                       'ConsentGiven', 'RenewedConsentGiven', 'ConsentRefused', 'ConsentWithdrawn',
                       'ConsentExpired', 'ConsentInvalidated')),
    purpose        text        NOT NULL DEFAULT 'dpv:DirectorySharing',
    legal_basis    text        NOT NULL DEFAULT 'dpv:Consent',
    recipients     text[]      NOT NULL,
    fields         text[]      NOT NULL,
    notice_version text,
    language       text,
    evidence_ref   text,
    starts_at      timestamptz NOT NULL,
    expires_at     timestamptz,
    at             timestamptz NOT NULL,
    actor          text        NOT NULL,
    source_ref     text        NOT NULL UNIQUE,
    recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX ON {schema}.consent_event (consent_ref, at DESC, seq DESC);
CREATE INDEX ON {schema}.consent_event (org_ref);

CREATE FUNCTION {schema}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER consent_event_append_only BEFORE UPDATE OR DELETE ON {schema}.consent_event
    FOR EACH ROW EXECUTE FUNCTION {schema}.refuse_change();
CREATE TRIGGER consent_event_no_truncate BEFORE TRUNCATE ON {schema}.consent_event
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.refuse_change();

-- The latest entry of every consent, and among them those that hold now.
CREATE VIEW {schema}.consent_current AS
    SELECT DISTINCT ON (consent_ref) *
      FROM {schema}.consent_event
     ORDER BY consent_ref, at DESC, seq DESC;
CREATE VIEW {schema}.authorisation AS
    SELECT consent_ref, org_ref, subject_kind, subject_ref, recipients, fields, starts_at, expires_at, at
      FROM {schema}.consent_current
     WHERE cardinality(recipients) > 0 AND starts_at <= now() AND (expires_at IS NULL OR expires_at > now());

-- The consents of one firm that hold now (the same rule as `authorisation`), found through the org index:
-- what the policies and the store ask for every firm row.
CREATE FUNCTION {schema}.org_authorisations(p_org text)
    RETURNS TABLE (subject_kind text, recipients text[], fields text[])
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
    SELECT l.subject_kind, l.recipients, l.fields
      FROM (SELECT DISTINCT ON (consent_ref) *
              FROM consent_event WHERE org_ref = p_org
             ORDER BY consent_ref, at DESC, seq DESC) l
     WHERE cardinality(l.recipients) > 0 AND l.starts_at <= now() AND (l.expires_at IS NULL OR l.expires_at > now())
$$;
