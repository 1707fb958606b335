-- Transactional outbox of indicator changes, relayed to the indicators topic in version order.
-- A version comes from one sequence, so it grows monotonically for every cell.
CREATE SEQUENCE indicator_version_seq;

CREATE TABLE indicator_outbox (
    version      bigint PRIMARY KEY DEFAULT nextval('indicator_version_seq'),
    indicator    text   NOT NULL,
    period_kind  text   NOT NULL,
    period_start date   NOT NULL,
    dims         text   NOT NULL,
    -- The cell's parts after the change: {part: value as decimal text}; {} once every part is gone.
    parts        jsonb  NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE indicator_outbox IS 'Indicator cell changes waiting to be published; deleted once the broker acknowledged them.';

-- Read model for BI tools: one row per cell with all of its parts.
CREATE VIEW indicator_cell_parts AS
SELECT c.indicator,
       c.period_kind,
       c.period_start,
       c.dimensions,
       c.version,
       c.updated_at,
       COALESCE(
           (SELECT jsonb_object_agg(p.part, p.value)
              FROM indicator_part p
             WHERE p.indicator = c.indicator AND p.period_kind = c.period_kind
               AND p.period_start = c.period_start AND p.dims = c.dims),
           '{}'::jsonb) AS parts
  FROM indicator_cell c;

COMMENT ON VIEW indicator_cell_parts IS 'Each indicator cell with its parts as a JSON object (value per part).';
