-- Statements pulled from an LRS: the events each produced, by LRS statement id, so that a voiding
-- statement retracts them by lookup instead of trusting the LRS to return the voided statement (some,
-- like Ralph, ignore `voidedStatementId`). No personal data: events are referenced by id, pseudonymous
-- key, country and audience only.
CREATE TABLE xapi_statement_event (
    source       text        NOT NULL,
    statement_id text        NOT NULL,
    -- [{"event_id": "...", "subject_key": "p-...", "country": "UY" | null, "audience": "MSME" | null}]
    events       jsonb       NOT NULL,
    pulled_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, statement_id)
);

COMMENT ON TABLE xapi_statement_event IS 'Events produced per pulled xAPI statement id, for retractions by voiding statements.';
