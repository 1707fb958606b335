-- The directory store: firm records of firms with a current authorisation, only the authorised fields.
-- Row-level security keyed on the requesting member state, set per transaction with
-- set_config('alcance.member_state', <state>, true) from the verified identity: no state, or a state that
-- is not a member, sees nothing. A person's contact fields need that person's consent as well.
CREATE TABLE {schema}.firm (
    org_ref         text PRIMARY KEY,
    legal_name      text,
    trade_name      text,
    country         char(2),
    sector          text,
    hs_chapters     text[],
    products        text[],
    size_band       text,
    exporter_status text,
    website         text,
    tax_id          text,
    contact_name    text,
    contact_email   text,
    contact_phone   text,
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE FUNCTION {schema}.requesting_state() RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('alcance.member_state', true), '') $$;

-- The requesting state when it is a member state, else NULL.
CREATE FUNCTION {schema}.requesting_member() RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
    SELECT s.iso2::text FROM member_state s WHERE s.iso2 = requesting_state()
$$;

-- The fields of `p_org` the requesting state may see now: those a current firm authorisation covering
-- the state lists, less the contact fields no current consent of the contact person covers. NULL when
-- none (no state, a non-member, no authorisation).
-- A high cost tells the planner to call it for as few rows as it can: walk firms in key order and stop
-- at the page's end, instead of evaluating every firm before sorting.
CREATE FUNCTION {schema}.shared_fields(p_org text) RETURNS text[]
    LANGUAGE sql STABLE SECURITY DEFINER COST 10000 SET search_path = {schema}, pg_temp AS $$
    WITH state AS (
        SELECT requesting_member() AS iso2
    ), covering AS (
        SELECT a.subject_kind, f AS field
          FROM org_authorisations(p_org) a, state, unnest(a.fields) f
         WHERE state.iso2 IS NOT NULL
           AND (state.iso2 = ANY (a.recipients) OR 'ALL_MEMBERS' = ANY (a.recipients))
    )
    SELECT array_agg(DISTINCT field ORDER BY field)
      FROM covering c
     WHERE c.subject_kind = 'ORG'
       AND (c.field NOT IN ('contactName', 'contactEmail', 'contactPhone')
            OR EXISTS (SELECT 1 FROM covering p WHERE p.subject_kind = 'PERSON' AND p.field = c.field))
$$;

ALTER TABLE {schema}.firm ENABLE ROW LEVEL SECURITY;
ALTER TABLE {schema}.firm FORCE ROW LEVEL SECURITY;
-- Readers see a row only when the requesting state may see some field of it.
CREATE POLICY firm_for_state ON {schema}.firm FOR SELECT
    USING ({schema}.shared_fields(org_ref) IS NOT NULL);
-- The directory's writer (the sync and withdrawals; never the API role) keeps every row.
CREATE POLICY firm_writer ON {schema}.firm FOR ALL TO alcance_directory_writer USING (true) WITH CHECK (true);

-- What a member state reads: each field only when authorised for it (NULL otherwise).
CREATE VIEW {schema}.firm_shared AS
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
     CROSS JOIN LATERAL (SELECT {schema}.shared_fields(f.org_ref) AS fields) a
     WHERE a.fields IS NOT NULL;
