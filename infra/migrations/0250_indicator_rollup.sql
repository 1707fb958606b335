-- Rollups: indicator parts already grouped the way readers ask for them, maintained by the processors
-- in each batch's transaction, so that a read costs a few index lookups instead of a scan of history.
-- `grouping` names the dimensions kept (sorted, comma-separated; '' for totals); `group_dims` is the
-- canonical JSON of their values (a dimension the part lacks reads 'UNKNOWN', as in the read model).

-- Distinct members per period (month, quarter and year each: a member in January and February counts
-- once in the quarter) and grouping, with reference counts as in indicator_member.
CREATE TABLE indicator_rollup_member (
    indicator    text    NOT NULL,
    part         text    NOT NULL,
    period_kind  text    NOT NULL CHECK (period_kind IN ('month', 'quarter', 'year')),
    period_start date    NOT NULL,
    grouping     text    NOT NULL,
    group_dims   text    NOT NULL,
    member       text    NOT NULL,
    refcount     integer NOT NULL,
    PRIMARY KEY (indicator, part, period_kind, period_start, grouping, group_dims, member)
);

-- The value of a part per period and group: for distinct parts the number of members whose refcount
-- is positive (kept in step by the statement that changes the refcounts), for sums the total of
-- the month (quarters and years add their months when read). `contributions` backs the value:
-- a row whose contributions reach zero is deleted.
CREATE TABLE indicator_rollup (
    indicator     text    NOT NULL,
    part          text    NOT NULL,
    period_kind   text    NOT NULL CHECK (period_kind IN ('month', 'quarter', 'year')),
    period_start  date    NOT NULL,
    grouping      text    NOT NULL,
    group_dims    text    NOT NULL,
    kind          text    NOT NULL CHECK (kind IN ('sum', 'distinct')),
    value         numeric NOT NULL,
    contributions bigint  NOT NULL,
    PRIMARY KEY (indicator, part, period_kind, grouping, period_start, group_dims)
);

-- Whether the rollups hold everything the part tables hold: true for a store created with them;
-- a store upgraded with facts in it gets them from `alcance recompute`, and is read the old way
-- until then.
CREATE TABLE indicator_rollup_state (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    complete boolean NOT NULL
);
INSERT INTO indicator_rollup_state (complete)
SELECT NOT EXISTS (SELECT 1 FROM indicator_part) AND NOT EXISTS (SELECT 1 FROM indicator_member);

COMMENT ON TABLE indicator_rollup IS 'Indicator parts per period and grouping, maintained with each batch (sum: per month; distinct: live members)';
COMMENT ON TABLE indicator_rollup_member IS 'Members of distinct parts per period and grouping, with reference counts';
