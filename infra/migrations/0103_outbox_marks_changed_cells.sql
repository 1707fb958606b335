-- Batches no longer lock a row per indicator cell: they only mark the cells they changed in the
-- outbox, and the relay reads those cells' parts when it publishes them, under a version it draws
-- from indicator_version_seq at that moment (relay rounds run one at a time, so a higher version
-- always carries a state at least as new). Distinct and latest parts are counted from their member
-- and report rows; indicator_part keeps the sums.
DROP VIEW indicator_cell_parts;
DROP TABLE indicator_cell;
ALTER TABLE indicator_outbox DROP COLUMN parts;
ALTER TABLE indicator_outbox RENAME COLUMN version TO id;

COMMENT ON TABLE indicator_outbox IS 'Indicator cells changed by committed batches, waiting to be published; deleted once the broker acknowledged them.';

-- Read model for BI tools: the value of every stored part of every cell.
CREATE VIEW indicator_part_value AS
SELECT indicator, period_kind, period_start, dims::jsonb AS dimensions, part, 'sum'::text AS kind, value
  FROM indicator_part
UNION ALL
SELECT indicator, period_kind, period_start, dims::jsonb, part, 'distinct', count(*)::numeric
  FROM indicator_member
 WHERE refcount > 0
 GROUP BY indicator, period_kind, period_start, dims, part
UNION ALL
SELECT indicator, period_kind, period_start, dims::jsonb, part, 'latest', sum(amount)
  FROM (SELECT DISTINCT ON (indicator, period_kind, period_start, dims, part, member)
               indicator, period_kind, period_start, dims, part, amount
          FROM indicator_report
         ORDER BY indicator, period_kind, period_start, dims, part, member, order_key DESC, event_id DESC
       ) AS winner
 GROUP BY indicator, period_kind, period_start, dims, part;

COMMENT ON VIEW indicator_part_value IS 'Every stored part of every indicator cell: sums, counts of live distinct members, sums of members'' latest reports.';

CREATE VIEW indicator_cell_parts AS
SELECT indicator, period_kind, period_start, dimensions, jsonb_object_agg(part, value) AS parts
  FROM indicator_part_value
 GROUP BY indicator, period_kind, period_start, dimensions;

COMMENT ON VIEW indicator_cell_parts IS 'Each indicator cell with its parts as a JSON object (value per part).';

COMMENT ON TABLE indicator_part IS 'Sum parts of each indicator cell (distinct and latest parts live in indicator_member and indicator_report); rates are derived at read time.';
