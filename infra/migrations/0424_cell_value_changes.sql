-- What each batch changed that the values kept per cell (migration 0422) depend on, noted in the batch's
-- own transaction and applied by the relay at the start of its next round (processors/cell_values.py).
-- A batch then only appends rows here, in statements it runs anyway, and the relay keeps the values:
-- kept in each batch, they cost ingest a third to a half of its rate.
-- Append-only and without indexes: the relay takes every row in each round.

-- A month row of a distinct part's member that crossed zero (became live, or was left by its last
-- contribution): the month's bit (bit m-1 for month m) in the member's year.
CREATE TABLE indicator_member_flip (
    indicator  text    NOT NULL,
    year_start date    NOT NULL,
    dims       text    NOT NULL,
    part       text    NOT NULL,
    member     text    NOT NULL,
    months     integer NOT NULL
);

-- A month report of a latest part that a batch stored, or deleted (its event was retracted).
CREATE TABLE indicator_report_change (
    indicator   text    NOT NULL,
    month_start date    NOT NULL,
    dims        text    NOT NULL,
    part        text    NOT NULL,
    member      text    NOT NULL,
    event_id    uuid    NOT NULL,
    order_key   text    NOT NULL,
    amount      numeric NOT NULL,
    retracted   boolean NOT NULL
);

-- Before this migration the batches kept the values themselves: nothing is pending.
COMMENT ON TABLE indicator_member_flip IS 'Member months of distinct parts that crossed zero in a batch, until the relay applies them to indicator_member_year and indicator_cell_value';
COMMENT ON TABLE indicator_report_change IS 'Month reports of latest parts stored or deleted by a batch, until the relay applies them to indicator_report_winner and indicator_cell_value';
