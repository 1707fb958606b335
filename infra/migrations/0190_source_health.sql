-- The health of each pulled source as its connector last reported it, for `alcance status` and
-- monitoring: a source failing for longer than its deadline shows here as 'failed' with its last error.
CREATE TABLE source_health (
    source           text        PRIMARY KEY,
    kind             text        NOT NULL,
    host             text        NOT NULL,
    health           text        NOT NULL,
    last_error       text,
    failing_for_s    double precision,
    records_pulled   bigint      NOT NULL DEFAULT 0,
    events_published bigint      NOT NULL DEFAULT 0,
    dead_lettered    bigint      NOT NULL DEFAULT 0,
    seconds_behind   double precision,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE source_health IS 'Per source: health (pulling, caught_up, retrying, failed, stopped), counters of the last run and the last error, written every few seconds by its connector.';
COMMENT ON COLUMN source_health.failing_for_s IS 'Seconds the source had been failing without a success when the row was written; NULL when it was answering';
