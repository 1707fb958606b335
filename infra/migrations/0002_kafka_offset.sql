-- Consumer offsets of the processors, written in the same transaction as the effects of each batch.
-- Offsets belong to one log identity: after the broker's log is replaced they are not reused.
-- The epoch fences a consumer that lost its partitions: each assignment bumps it, and a batch commits
-- only if the epoch it read at assignment is still current.
CREATE TABLE kafka_offset (
    log_identity   text    NOT NULL,
    consumer_group text    NOT NULL,
    topic          text    NOT NULL,
    partition      integer NOT NULL,
    next_offset    bigint  NOT NULL,
    epoch          bigint  NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (log_identity, consumer_group, topic, partition)
);

COMMENT ON TABLE kafka_offset IS 'Next Kafka offset to process per consumer group and partition, per log identity.';
