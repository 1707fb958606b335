-- BI tools read indicator values, not only raw parts: the snapshots' results as columns, with the instant
-- they are exact at. A value here may trail the store by the refresher's pace; the query API reads the
-- live model instead while a change is pending.
CREATE VIEW indicator_snapshot_value AS
SELECT s.indicator, s.period_kind, s.period_start,
       CASE WHEN s.grouping = '' THEN ARRAY[]::text[] ELSE string_to_array(s.grouping, ',') END AS grouped_by,
       s.dimensions,
       (r.result ->> 'value')::numeric AS value,
       r.result -> 'parts' AS parts,
       r.result ->> 'unit' AS unit,
       (r.result ->> 'provisional')::boolean AS provisional,
       t.as_of
  FROM indicator_snapshot AS s
  JOIN indicator_snapshot_state AS t USING (indicator)
 CROSS JOIN LATERAL (SELECT s.result::jsonb AS result) AS r;

COMMENT ON VIEW indicator_snapshot_value IS 'Indicator values (internal audience) per period kind, grouping (grouped_by, in the order the cells are sorted) and cell, exact as of as_of; parts hold decimal numbers as text. Refreshed by the snapshot refresher.';
