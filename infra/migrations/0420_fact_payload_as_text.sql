-- Facts keep their payload and parts as text: the processor stores only payloads it has parsed and
-- validated, and parts it wrote itself, so PostgreSQL's json check parsed every byte a second time (about a
-- tenth of the facts' insert). Both columns are still read whole (recompute, retractions); for ad-hoc
-- queries cast them: payload::json ->> 'country'.

ALTER TABLE fact
    ALTER COLUMN payload TYPE text,
    ALTER COLUMN parts DROP DEFAULT,
    ALTER COLUMN parts TYPE text,
    ALTER COLUMN parts SET DEFAULT '[]';

COMMENT ON COLUMN fact.payload IS 'The event as received (CloudEvents data), JSON text parsed and validated by the processor';
COMMENT ON COLUMN fact.parts IS 'The parts this event contributed, as JSON text written by the processor (see processors.deltas.parts_json)';
