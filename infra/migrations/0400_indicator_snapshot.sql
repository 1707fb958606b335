-- Indicator snapshots: the results of the read model (`processors.read.read_indicators`, internal
-- audience) for the groupings dashboards ask for, computed at one instant by the snapshot refresher
-- (`processors.snapshots`), so that a read of "now" is an index lookup. Reads serve them only while no
-- change to the indicators they read is pending (an outbox mark or a stale entry) and they are recent.

-- Both snapshot tables are derived data, rewritten by every refresh: UNLOGGED, so a refresh writes no WAL
-- that the batches' commits would wait behind. A crash empties both together (reads are then live until
-- the next refresh); standbys do not have them (reads there are live).

-- One row per indicator, period kind, grouping and cell; `position` keeps the read model's order.
-- `grouping` names the `by` dimensions in the order asked (comma-separated; '' for totals).
CREATE UNLOGGED TABLE indicator_snapshot (
    indicator    text    NOT NULL,
    period_kind  text    NOT NULL CHECK (period_kind IN ('month', 'quarter', 'year')),
    grouping     text    NOT NULL,
    position     integer NOT NULL,
    period_start date    NOT NULL,
    dimensions   jsonb   NOT NULL,
    -- The read model's result object: value, parts (decimal numbers as text), unit, provisional.
    result       text    NOT NULL,
    PRIMARY KEY (indicator, period_kind, grouping, position)
);

COMMENT ON TABLE indicator_snapshot IS 'Indicator results per period kind, grouping and cell, exact as of indicator_snapshot_state.as_of.';

-- When each indicator's snapshot was taken, and the settings its values depend on.
CREATE UNLOGGED TABLE indicator_snapshot_state (
    indicator    text        PRIMARY KEY,
    as_of        timestamptz NOT NULL,
    settings     text        NOT NULL,
    refresh_ms   integer     NOT NULL
);

COMMENT ON TABLE indicator_snapshot_state IS 'The instant each indicator''s snapshot is exact at, and the settings it was computed with.';

-- Stored indicators whose cells changed since the last refresh: the relay records them in the
-- transaction that deletes their outbox marks; a refresh deletes the entries it has taken into account
-- (those whose mark it saw), so a change after its snapshot keeps its entry.
CREATE SEQUENCE indicator_stale_seq;

CREATE TABLE indicator_stale (
    indicator  text   PRIMARY KEY,
    mark       bigint NOT NULL DEFAULT nextval('indicator_stale_seq')
);

COMMENT ON TABLE indicator_stale IS 'Stored indicators changed since the snapshots were last refreshed.';

-- CVF-16 reads its annual targets: a changed target makes its snapshot stale too. Rewriting a target
-- with the same values (each command applies the configured targets) changes nothing.
CREATE FUNCTION indicator_stale_on_target() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO indicator_stale (indicator) VALUES ('CVF-16')
        ON CONFLICT (indicator) DO UPDATE SET mark = nextval('indicator_stale_seq');
    RETURN NULL;
END;
$$;

CREATE TRIGGER reach_target_added_or_removed
    AFTER INSERT OR DELETE ON reach_target
    FOR EACH ROW EXECUTE FUNCTION indicator_stale_on_target();

CREATE TRIGGER reach_target_changed
    AFTER UPDATE ON reach_target
    FOR EACH ROW WHEN (OLD.target IS DISTINCT FROM NEW.target) EXECUTE FUNCTION indicator_stale_on_target();

CREATE TRIGGER reach_target_emptied
    AFTER TRUNCATE ON reach_target
    FOR EACH STATEMENT EXECUTE FUNCTION indicator_stale_on_target();
