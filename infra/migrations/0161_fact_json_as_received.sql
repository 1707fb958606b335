-- Facts keep their payload and parts as json (the text as written, checked to be JSON) rather than
-- jsonb: every batch writes one fact per event and jsonb's conversion to its binary form costs more
-- than the rest of the row. Both columns are read whole (recompute, retractions); ->> still works.

ALTER TABLE fact
    ALTER COLUMN payload TYPE json USING payload::json,
    ALTER COLUMN parts DROP DEFAULT,
    ALTER COLUMN parts TYPE json USING parts::json,
    ALTER COLUMN parts SET DEFAULT '[]'::json;
