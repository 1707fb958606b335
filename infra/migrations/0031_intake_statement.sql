-- Statements and Caliper events accepted by the push intake: what each became, so that a resent id is
-- recognised (same content: accepted again; different content: 409 Conflict) and a later voiding
-- statement can retract the events of the statement it voids. No personal data: the digest is taken
-- over the pseudonymised content, and the events are referenced by id and pseudonymous key only.
CREATE TABLE intake_statement (
    source         text        NOT NULL,
    statement_id   uuid        NOT NULL,
    content_digest text        NOT NULL,
    -- [{"event_id": "...", "subject_key": "p-...", "country": "UY" | null, "audience": "MSME" | null}]
    events         jsonb       NOT NULL DEFAULT '[]'::jsonb,
    received_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, statement_id)
);

COMMENT ON TABLE intake_statement IS 'Statements received by the push intake: content digest and produced event ids.';
