-- Indicator parts: additive components of every indicator, per event-time period and dimensions.
-- Rates and ratios are derived at read time from these parts. `dims` is the canonical JSON text of
-- the dimensions (sorted keys); `dimensions` is the same as jsonb for ad-hoc queries.

-- One row per published cell: taking its row lock serialises the batches that touch the cell, so
-- the outbox version order matches the order of the cell's states.
CREATE TABLE indicator_cell (
    indicator    text   NOT NULL,
    period_kind  text   NOT NULL CHECK (period_kind IN ('month', 'quarter', 'year')),
    period_start date   NOT NULL,
    dims         text   NOT NULL,
    dimensions   jsonb  GENERATED ALWAYS AS (dims::jsonb) STORED,
    version      bigint NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (indicator, period_kind, period_start, dims)
);

-- The value of each part: a sum, a count of distinct members, or the sum of members' latest values.
-- `contributions` counts the event contributions behind the value; a part whose contributions all
-- were retracted is deleted, so a rebuild from the facts gives exactly the same rows.
CREATE TABLE indicator_part (
    indicator     text    NOT NULL,
    period_kind   text    NOT NULL,
    period_start  date    NOT NULL,
    dims          text    NOT NULL,
    part          text    NOT NULL,
    kind          text    NOT NULL CHECK (kind IN ('sum', 'distinct', 'latest')),
    value         numeric NOT NULL,
    contributions bigint  NOT NULL,
    dimensions    jsonb   GENERATED ALWAYS AS (dims::jsonb) STORED,
    -- Reads select an indicator and a period kind: the leading columns of this key.
    PRIMARY KEY (indicator, period_kind, period_start, dims, part)
);

-- Members of "distinct" parts with a reference count: a member counts while refcount > 0.
CREATE TABLE indicator_member (
    indicator    text    NOT NULL,
    period_kind  text    NOT NULL,
    period_start date    NOT NULL,
    dims         text    NOT NULL,
    part         text    NOT NULL,
    member       text    NOT NULL,
    refcount     integer NOT NULL,
    PRIMARY KEY (indicator, period_kind, period_start, dims, part, member)
);

-- Every report of "latest" parts; per member the report with the highest (order_key, event_id) wins.
CREATE TABLE indicator_report (
    indicator    text    NOT NULL,
    period_kind  text    NOT NULL,
    period_start date    NOT NULL,
    dims         text    NOT NULL,
    part         text    NOT NULL,
    member       text    NOT NULL,
    event_id     uuid    NOT NULL,
    order_key    text    NOT NULL,
    amount       numeric NOT NULL,
    PRIMARY KEY (indicator, period_kind, period_start, dims, part, member, event_id)
);

COMMENT ON TABLE indicator_cell IS 'One row per indicator cell (indicator, period, dimensions) with its last published version.';
COMMENT ON TABLE indicator_part IS 'Additive parts of each indicator cell; rates are derived from them at read time.';
COMMENT ON TABLE indicator_member IS 'Members counted by distinct parts, with the number of live events counting them.';
COMMENT ON TABLE indicator_report IS 'All reports of latest-value parts; the highest order_key per member is current.';
