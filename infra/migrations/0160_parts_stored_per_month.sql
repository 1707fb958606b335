-- Indicator parts are stored per month only. A quarter or a year cell is the merge of its months
-- (sums add, distinct members unite, latest reports compete), which every reader derives: one stored
-- row per part and event instead of three, and a third of the write work per batch.

CREATE FUNCTION alcance_periods(month date) RETURNS TABLE (period_kind text, period_start date)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        VALUES ('month', month),
               ('quarter', date_trunc('quarter', month::timestamp)::date),
               ('year', date_trunc('year', month::timestamp)::date)
    $$;

COMMENT ON FUNCTION alcance_periods(date) IS 'The month, quarter and year (kind, first day) a stored month row belongs to';

-- Quarter and year rows written before this migration are exactly the merge of their month rows.
DELETE FROM indicator_part WHERE period_kind <> 'month';
DELETE FROM indicator_member WHERE period_kind <> 'month';
DELETE FROM indicator_report WHERE period_kind <> 'month';
-- The outbox keeps its quarter and year marks: the relay derives those cells from their months.

ALTER TABLE indicator_part ADD CONSTRAINT indicator_part_stored_per_month CHECK (period_kind = 'month');
ALTER TABLE indicator_member ADD CONSTRAINT indicator_member_stored_per_month CHECK (period_kind = 'month');
ALTER TABLE indicator_report ADD CONSTRAINT indicator_report_stored_per_month CHECK (period_kind = 'month');

COMMENT ON COLUMN indicator_part.period_kind IS 'Always month: quarters and years are derived (alcance_periods)';
COMMENT ON COLUMN indicator_member.period_kind IS 'Always month: quarters and years are derived (alcance_periods)';
COMMENT ON COLUMN indicator_report.period_kind IS 'Always month: quarters and years are derived (alcance_periods)';

-- The read model keeps its columns and meaning: each view now reads the month rows into their
-- month, quarter and year.
CREATE OR REPLACE VIEW indicator_part_value AS
SELECT t.indicator, k.period_kind, k.period_start, t.dims::jsonb AS dimensions, t.part, 'sum'::text AS kind,
       sum(t.value) AS value
  FROM indicator_part AS t CROSS JOIN LATERAL alcance_periods(t.period_start) AS k
 GROUP BY t.indicator, k.period_kind, k.period_start, t.dims, t.part
UNION ALL
SELECT t.indicator, k.period_kind, k.period_start, t.dims::jsonb, t.part, 'distinct',
       count(DISTINCT t.member)::numeric
  FROM indicator_member AS t CROSS JOIN LATERAL alcance_periods(t.period_start) AS k
 WHERE t.refcount > 0
 GROUP BY t.indicator, k.period_kind, k.period_start, t.dims, t.part
UNION ALL
SELECT indicator, period_kind, period_start, dims::jsonb, part, 'latest', sum(amount)
  FROM (SELECT DISTINCT ON (t.indicator, k.period_kind, k.period_start, t.dims, t.part, t.member)
               t.indicator, k.period_kind, k.period_start, t.dims, t.part, t.amount
          FROM indicator_report AS t CROSS JOIN LATERAL alcance_periods(t.period_start) AS k
         ORDER BY t.indicator, k.period_kind, k.period_start, t.dims, t.part, t.member,
                  t.order_key DESC, t.event_id DESC
       ) AS winner
 GROUP BY indicator, period_kind, period_start, dims, part;

CREATE OR REPLACE VIEW indicator_member_live AS
SELECT DISTINCT t.indicator, k.period_kind, k.period_start, t.dims::jsonb AS dimensions, t.part, t.member
  FROM indicator_member AS t CROSS JOIN LATERAL alcance_periods(t.period_start) AS k
 WHERE t.refcount > 0;

CREATE OR REPLACE VIEW indicator_latest AS
SELECT DISTINCT ON (t.indicator, k.period_kind, t.part, t.member)
       t.indicator, k.period_kind, t.part, t.member, k.period_start, t.dims::jsonb AS dimensions,
       t.amount AS value, t.order_key, t.event_id
  FROM indicator_report AS t CROSS JOIN LATERAL alcance_periods(t.period_start) AS k
 ORDER BY t.indicator, k.period_kind, t.part, t.member, t.order_key DESC, t.event_id DESC;
