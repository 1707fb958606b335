-- Whether the values kept per cell (migration 0422) hold everything the part tables hold. Batches of a
-- processor run with `ALCANCE_PROCESSOR__CELL_VALUES=false` leave them out and mark them incomplete;
-- the relay then merges its cells from the month rows, as before 0422, until `alcance recompute` (with
-- the setting on) rebuilds them. Migration 0422 filled them from every month row: complete.
CREATE TABLE indicator_cell_value_state (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    complete boolean NOT NULL
);
INSERT INTO indicator_cell_value_state (complete) VALUES (true);

COMMENT ON TABLE indicator_cell_value_state IS 'Whether indicator_cell_value holds every cell (false after batches run without it, until a recompute)';
