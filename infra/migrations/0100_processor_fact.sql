-- Facts: every distinct event the processors have seen, keyed by its deterministic id.
-- A duplicate (re-pull, redelivery) conflicts on the key and contributes nothing.
-- A retraction that arrives before its event leaves a placeholder row (received = false,
-- retracted = true); the event, when it arrives, fills the row and contributes nothing.
CREATE TABLE fact (
    event_id     uuid        PRIMARY KEY,
    event_type   text,
    occurred_at  timestamptz,
    subject_key  text,
    source       text,
    -- The event as received (CloudEvents data): recompute re-derives the parts from it.
    payload      jsonb,
    -- The parts this event contributed, so a retraction can negate exactly them.
    parts        jsonb       NOT NULL DEFAULT '[]'::jsonb,
    received     boolean     NOT NULL,
    retracted    boolean     NOT NULL DEFAULT false,
    -- For a retraction event: the id of the event it retracts.
    retracts     uuid,
    topic        text,
    "partition"  integer,
    "offset"     bigint,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE fact IS 'Distinct events processed (by event id), with the indicator parts each contributed.';
COMMENT ON COLUMN fact.received IS 'false while only a retraction of this event has been seen';
COMMENT ON COLUMN fact.retracted IS 'true once a retraction of this event has been seen; it then contributes nothing';
