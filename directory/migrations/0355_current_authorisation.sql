-- The current terms of every consent per member state, kept by the ledger's own inserts (a trigger, so in
-- the same transaction as the entry): one row per consent and member state its latest entry covers,
-- `ALL_MEMBERS` spelled out. Rows keep the consent's window; readers check it against now(), so a grant
-- dated tomorrow or one past its expiry shows nothing even before the sync records the expiry.
-- The policy and the shared view find a firm's terms for the requesting state by index, instead of
-- working out each firm's consents from the ledger row by row.
CREATE TABLE {schema}.current_authorisation (
    consent_ref  text        NOT NULL,
    member_state text        NOT NULL,
    org_ref      text        NOT NULL,
    subject_kind text        NOT NULL,
    fields       text[]      NOT NULL,
    starts_at    timestamptz NOT NULL,
    expires_at   timestamptz,
    PRIMARY KEY (consent_ref, member_state)
);
CREATE INDEX ON {schema}.current_authorisation (member_state, org_ref);
CREATE INDEX ON {schema}.current_authorisation (org_ref, member_state);

CREATE FUNCTION {schema}.keep_current_authorisation() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
BEGIN
    -- One consent's entries at a time: a concurrent entry waits, then reads this one's.
    PERFORM pg_advisory_xact_lock(hashtext('alcance.consent:' || NEW.consent_ref));
    DELETE FROM current_authorisation WHERE consent_ref = NEW.consent_ref;
    INSERT INTO current_authorisation (consent_ref, member_state, org_ref, subject_kind, fields, starts_at,
                                       expires_at)
    SELECT l.consent_ref, s.iso2::text, l.org_ref, l.subject_kind, l.fields, l.starts_at, l.expires_at
      FROM (SELECT * FROM consent_event WHERE consent_ref = NEW.consent_ref
             ORDER BY at DESC, seq DESC LIMIT 1) l
      JOIN member_state s ON s.iso2::text = ANY (l.recipients) OR 'ALL_MEMBERS' = ANY (l.recipients);
    RETURN NULL;
END $$;
CREATE TRIGGER consent_event_current AFTER INSERT ON {schema}.consent_event
    FOR EACH ROW EXECUTE FUNCTION {schema}.keep_current_authorisation();

INSERT INTO {schema}.current_authorisation (consent_ref, member_state, org_ref, subject_kind, fields,
                                            starts_at, expires_at)
SELECT l.consent_ref, s.iso2::text, l.org_ref, l.subject_kind, l.fields, l.starts_at, l.expires_at
  FROM {schema}.consent_current l
  JOIN {schema}.member_state s ON s.iso2::text = ANY (l.recipients) OR 'ALL_MEMBERS' = ANY (l.recipients);

-- A firm row is visible when a current firm consent covers the requesting state (the view then keeps
-- only firms with some field to show). `requesting_state()` may name a non-member: no row has it.
DROP POLICY firm_for_state ON {schema}.firm;
CREATE POLICY firm_for_state ON {schema}.firm FOR SELECT USING (EXISTS (
    SELECT 1 FROM {schema}.current_authorisation c
     WHERE c.org_ref = firm.org_ref AND c.member_state = {schema}.requesting_state()
       AND c.subject_kind = 'ORG' AND c.starts_at <= now() AND (c.expires_at IS NULL OR c.expires_at > now())
));

-- The fields the requesting state may see, by the same rule as before (firm consents' fields, contact
-- fields only with the contact person's consent), from the current terms.
CREATE OR REPLACE VIEW {schema}.firm_shared AS
    SELECT f.org_ref, a.fields,
           CASE WHEN 'legalName' = ANY (a.fields) THEN f.legal_name END AS legal_name,
           CASE WHEN 'tradeName' = ANY (a.fields) THEN f.trade_name END AS trade_name,
           CASE WHEN 'country' = ANY (a.fields) THEN f.country::text END AS country,
           CASE WHEN 'sector' = ANY (a.fields) THEN f.sector END AS sector,
           CASE WHEN 'hsChapters' = ANY (a.fields) THEN f.hs_chapters END AS hs_chapters,
           CASE WHEN 'products' = ANY (a.fields) THEN f.products END AS products,
           CASE WHEN 'sizeBand' = ANY (a.fields) THEN f.size_band END AS size_band,
           CASE WHEN 'exporterStatus' = ANY (a.fields) THEN f.exporter_status END AS exporter_status,
           CASE WHEN 'website' = ANY (a.fields) THEN f.website END AS website,
           CASE WHEN 'taxId' = ANY (a.fields) THEN f.tax_id END AS tax_id,
           CASE WHEN 'contactName' = ANY (a.fields) THEN f.contact_name END AS contact_name,
           CASE WHEN 'contactEmail' = ANY (a.fields) THEN f.contact_email END AS contact_email,
           CASE WHEN 'contactPhone' = ANY (a.fields) THEN f.contact_phone END AS contact_phone
      FROM {schema}.firm f
     CROSS JOIN LATERAL (
        WITH covering AS (
            SELECT c.subject_kind, field
              FROM {schema}.current_authorisation c, unnest(c.fields) field
             WHERE c.org_ref = f.org_ref AND c.member_state = {schema}.requesting_state()
               AND c.starts_at <= now() AND (c.expires_at IS NULL OR c.expires_at > now())
        )
        SELECT array_agg(DISTINCT o.field ORDER BY o.field) AS fields
          FROM covering o
         WHERE o.subject_kind = 'ORG'
           AND (o.field NOT IN ('contactName', 'contactEmail', 'contactPhone')
                OR EXISTS (SELECT 1 FROM covering p WHERE p.subject_kind = 'PERSON' AND p.field = o.field))
     ) a
     WHERE a.fields IS NOT NULL;
