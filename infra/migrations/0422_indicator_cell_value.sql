-- The value of every distinct and latest part per cell (month, quarter and year), kept by the processors
-- in each batch's transaction, so the relay reads a changed cell by index lookups. Merged from the month
-- rows instead, a year cell's distinct count read every member of the year (400k rows for one cell at
-- 10M events) and its latest value every report, and the indicators topic trailed far behind the store.

-- The batches keep these values with PostgreSQL 18's `RETURNING old/new` (processors/cell_values.py).
DO $$
BEGIN
    IF current_setting('server_version_num')::integer < 180000 THEN
        RAISE EXCEPTION 'alcance needs PostgreSQL 18 or later (RETURNING old/new); this server is %',
            current_setting('server_version');
    END IF;
END
$$;

-- The months of the year in which a member of a distinct part is live (its month row's refcount is
-- positive): bit m-1 for month m. A batch flips the bits of the month rows that crossed zero, and the
-- flipped bits tell which month, quarter and year counts gained or lost the member.
CREATE TABLE indicator_member_year (
    indicator  text    NOT NULL,
    year_start date    NOT NULL,
    dims       text    NOT NULL,
    part       text    NOT NULL,
    member     text    NOT NULL,
    months     integer NOT NULL CHECK (months BETWEEN 0 AND 4095),
    PRIMARY KEY (indicator, year_start, dims, part, member)
);

-- Per latest part, quarter or year cell and member: the winning report (highest order key, then event
-- id) of the months the cell covers. A month's latest values are read from its own reports.
CREATE TABLE indicator_report_winner (
    indicator     text    NOT NULL,
    period_kind   text    NOT NULL CHECK (period_kind IN ('quarter', 'year')),
    period_start  date    NOT NULL,
    dims          text    NOT NULL,
    part          text    NOT NULL,
    member        text    NOT NULL,
    event_id      uuid    NOT NULL,
    order_key     text    NOT NULL,
    amount        numeric NOT NULL,
    PRIMARY KEY (indicator, period_kind, period_start, dims, part, member)
);

-- Per cell and distinct part (every period kind) or latest part (quarters and years): the value (live
-- members; the sum of the winners' amounts) and the members behind it. A row whose members reach zero is deleted, as the part then has no value.
CREATE TABLE indicator_cell_value (
    indicator    text    NOT NULL,
    period_kind  text    NOT NULL CHECK (period_kind IN ('month', 'quarter', 'year')),
    period_start date    NOT NULL,
    dims         text    NOT NULL,
    part         text    NOT NULL,
    kind         text    NOT NULL CHECK (kind IN ('distinct', 'latest')),
    value        numeric NOT NULL,
    members      bigint  NOT NULL,
    PRIMARY KEY (indicator, period_kind, period_start, dims, part)
);

-- The cells of a year a month bit mask touches: each month, each quarter, the year (first month's offset).
CREATE FUNCTION alcance_year_spans() RETURNS TABLE (period_kind text, month_offset integer, mask integer)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT 'month', m, 1 << m FROM generate_series(0, 11) AS m
        UNION ALL
        SELECT 'quarter', 3 * q, 7 << (3 * q) FROM generate_series(0, 3) AS q
        UNION ALL
        SELECT 'year', 0, 4095
    $$;

-- A store with history gets the same rows its batches would have written.
INSERT INTO indicator_member_year (indicator, year_start, dims, part, member, months)
SELECT indicator, date_trunc('year', period_start::timestamp)::date, dims, part, member,
       bit_or(1 << (extract(month FROM period_start)::integer - 1))
  FROM indicator_member
 WHERE refcount > 0
 GROUP BY 1, 2, 3, 4, 5;

INSERT INTO indicator_report_winner (indicator, period_kind, period_start, dims, part, member, event_id,
                                     order_key, amount)
SELECT DISTINCT ON (r.indicator, k.period_kind, k.period_start, r.dims, r.part, r.member)
       r.indicator, k.period_kind, k.period_start, r.dims, r.part, r.member, r.event_id, r.order_key, r.amount
  FROM indicator_report AS r CROSS JOIN LATERAL alcance_periods(r.period_start) AS k
 WHERE k.period_kind <> 'month'
 ORDER BY r.indicator, k.period_kind, k.period_start, r.dims, r.part, r.member, r.order_key DESC,
          r.event_id DESC;

INSERT INTO indicator_cell_value (indicator, period_kind, period_start, dims, part, kind, value, members)
SELECT y.indicator, s.period_kind, (y.year_start + make_interval(months => s.month_offset))::date, y.dims,
       y.part, 'distinct', count(*), count(*)
  FROM indicator_member_year AS y JOIN alcance_year_spans() AS s ON y.months & s.mask <> 0
 GROUP BY 1, 2, 3, 4, 5
UNION ALL
SELECT indicator, period_kind, period_start, dims, part, 'latest', sum(amount), count(*)
  FROM indicator_report_winner
 GROUP BY 1, 2, 3, 4, 5;

COMMENT ON TABLE indicator_member_year IS 'Members of distinct parts per year, with the months they are live in (bit mask)';
COMMENT ON TABLE indicator_report_winner IS 'The winning report per latest part, cell and member';
COMMENT ON TABLE indicator_cell_value IS 'Values of distinct and latest parts per cell, kept with each batch; read by the relay';
