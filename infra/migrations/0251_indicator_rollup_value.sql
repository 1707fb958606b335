-- Indicator values for BI tools, read from the rollups: one row per indicator, period and grouping,
-- with the parts as JSON and the value derived as `processors.indicators.derive.derive_value` does
-- (six decimals, ties to even; no value where the denominator is zero).

CREATE FUNCTION alcance_round_half_even(x numeric) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT round(CASE WHEN abs(x * 1000000 - trunc(x * 1000000)) = 0.5
                          THEN (trunc(x * 1000000) + CASE WHEN mod(trunc(x * 1000000), 2) = 0 THEN 0
                                                          ELSE sign(x) END) / 1000000
                          ELSE x END, 6)
    $$;

COMMENT ON FUNCTION alcance_round_half_even(numeric) IS 'x rounded to six decimals, ties to even (as published values)';

-- How each indicator read from the rollups derives its value: op 'part' (the numerator part) or
-- 'ratio' (numerator / denominator * scale). A test compares these rows with the catalogue.
CREATE TABLE indicator_rollup_derivation (
    indicator   text    PRIMARY KEY,
    op          text    NOT NULL CHECK (op IN ('part', 'ratio')),
    numerator   text    NOT NULL,
    denominator text,
    scale       numeric NOT NULL DEFAULT 1,
    parts       text[]  NOT NULL
);

INSERT INTO indicator_rollup_derivation (indicator, op, numerator, denominator, scale, parts) VALUES
    ('PLGN-04', 'part', 'published', NULL, 1, ARRAY['published']),
    ('PLGN-07', 'ratio', 'held', 'scheduled', 1, ARRAY['scheduled', 'held', 'no_show']),
    ('ACT-01', 'part', 'cost_usd', NULL, 1, ARRAY['cost_usd']),
    ('ACT-02', 'part', 'served', NULL, 1, ARRAY['served']);

CREATE VIEW indicator_rollup_value AS
WITH cell_part AS (
    SELECT r.indicator, r.part, k.period_kind, k.period_start, r.grouping, r.group_dims, sum(r.value) AS value
      FROM indicator_rollup AS r CROSS JOIN LATERAL alcance_periods(r.period_start) AS k
     WHERE r.kind = 'sum' AND r.period_kind = 'month' AND r.contributions > 0
     GROUP BY 1, 2, 3, 4, 5, 6
    UNION ALL
    SELECT r.indicator, r.part, r.period_kind, r.period_start, r.grouping, r.group_dims, r.value
      FROM indicator_rollup AS r
     WHERE r.kind = 'distinct' AND r.contributions > 0
), cell AS (
    SELECT c.indicator, c.period_kind, c.period_start, c.grouping, c.group_dims,
           jsonb_object_agg(c.part, c.value) AS parts
      FROM cell_part AS c
     GROUP BY 1, 2, 3, 4, 5
)
SELECT c.indicator, c.period_kind, c.period_start,
       CASE c.grouping WHEN '' THEN ARRAY[]::text[] ELSE string_to_array(c.grouping, ',') END AS grouped_by,
       c.group_dims::jsonb AS dimensions,
       CASE d.op
           WHEN 'part' THEN alcance_round_half_even(coalesce((c.parts ->> d.numerator)::numeric, 0))
           ELSE alcance_round_half_even(coalesce((c.parts ->> d.numerator)::numeric, 0)
                                        / NULLIF(coalesce((c.parts ->> d.denominator)::numeric, 0), 0)
                                        * d.scale)
       END AS value,
       (SELECT jsonb_object_agg(p, coalesce(c.parts -> p, '0'::jsonb)) FROM unnest(d.parts) AS p) AS parts
  FROM cell AS c JOIN indicator_rollup_derivation AS d USING (indicator);

COMMENT ON VIEW indicator_rollup_value IS 'Values of the indicators kept in rollups (PLGN-04, PLGN-07, ACT-01, ACT-02) per period kind, period and grouping: filter on period_kind and grouped_by (e.g. ''{country}''; ''{}'' for totals, dimension names sorted), then read value.';
COMMENT ON COLUMN indicator_rollup_value.grouped_by IS 'The dimensions the row is grouped by, sorted; empty for totals';
COMMENT ON COLUMN indicator_rollup_value.value IS 'The indicator value (six decimals); NULL where undefined (zero denominator)';
