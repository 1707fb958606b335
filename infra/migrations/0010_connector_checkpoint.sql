-- Connector checkpoints: the history of committed cursors per source, each with the log identity of
-- the broker it was published to and the highest offset produced so far per topic partition, so that a
-- connector can rewind to a cursor whose events the processors are known to have consumed when the
-- broker's log is replaced.
CREATE TABLE connector_checkpoint (
    source           text        NOT NULL,
    seq              bigint      NOT NULL,
    cursor_state     jsonb,
    log_identity     text        NOT NULL,
    -- {"<topic>": {"<partition>": <max offset produced up to and including this checkpoint>}}
    produced_offsets jsonb       NOT NULL DEFAULT '{}'::jsonb,
    records          integer     NOT NULL DEFAULT 0,
    committed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, seq)
);

-- One row per source: only the holder of an unexpired lease pulls and commits.
CREATE TABLE connector_lease (
    source      text        PRIMARY KEY,
    holder      uuid        NOT NULL,
    epoch       bigint      NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

COMMENT ON TABLE connector_checkpoint IS 'Committed source cursors per connector, newest seq last, with produced Kafka offsets.';
COMMENT ON TABLE connector_lease IS 'Which connector instance currently owns each source.';
