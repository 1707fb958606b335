-- Where the directory sync is in PLGN's feed, how many firms PLGN's directory lists, and the directory's
-- indicators (art. 8: "determine its usefulness as a trade-intelligence tool"), read from the ledger and
-- the access log.
CREATE TABLE {schema}.sync_state (
    name       text PRIMARY KEY,
    value      text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- DIR-01: directory reads and denials per member state and month.
CREATE VIEW {schema}.indicator_accesses AS
    SELECT date_trunc('month', at AT TIME ZONE 'UTC')::date AS month, coalesce(member_state, 'UNKNOWN') AS member_state,
           count(*) FILTER (WHERE outcome = 'granted') AS reads,
           count(*) FILTER (WHERE outcome = 'denied') AS denials
      FROM {schema}.access_log
     WHERE outcome IN ('granted', 'denied')
     GROUP BY 1, 2;

-- DIR-02: distinct firms a member state received in a month.
CREATE VIEW {schema}.indicator_firms_viewed AS
    SELECT date_trunc('month', l.at AT TIME ZONE 'UTC')::date AS month, l.member_state,
           count(DISTINCT f) AS firms
      FROM {schema}.access_log l, unnest(l.org_refs) f
     WHERE l.outcome = 'granted'
     GROUP BY 1, 2;

-- DIR-03: firms with a current authorisation covering each member state, over the firms PLGN lists.
CREATE VIEW {schema}.indicator_coverage AS
    SELECT s.iso2::text AS member_state,
           count(DISTINCT a.org_ref) AS authorised,
           (SELECT value::bigint FROM {schema}.sync_state WHERE name = 'directory_firms') AS listed
      FROM {schema}.member_state s
      LEFT JOIN {schema}.authorisation a
        ON a.subject_kind = 'ORG' AND (s.iso2 = ANY (a.recipients) OR 'ALL_MEMBERS' = ANY (a.recipients))
     GROUP BY s.iso2;
