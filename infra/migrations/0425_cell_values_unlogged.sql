-- The values kept per cell (0422) and the changes the batches note for them (0424) are derived data,
-- rebuilt from the month rows at will: UNLOGGED, so that neither the batches' notes nor the relay's
-- upkeep write WAL that the batches' commits wait behind (measured in the README, "Cell values for the
-- relay"). A crash empties every unlogged table together, the sentinel below too, and standbys do not
-- have them: the relay then fills them again from the month rows (alcance_fill_cell_values) before its
-- next round, and reads merge the months until then.
ALTER TABLE indicator_member_flip SET UNLOGGED;
ALTER TABLE indicator_report_change SET UNLOGGED;
ALTER TABLE indicator_member_year SET UNLOGGED;
ALTER TABLE indicator_report_winner SET UNLOGGED;
ALTER TABLE indicator_cell_value SET UNLOGGED;

-- One row while the unlogged tables hold what they were filled with; none after a crash emptied them.
CREATE UNLOGGED TABLE indicator_cell_value_kept (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row)
);
INSERT INTO indicator_cell_value_kept DEFAULT VALUES;

-- Fills the kept values from the month rows, as migration 0422 did, and drops the notes the month rows
-- already hold. Exact only in a REPEATABLE READ transaction: the notes it drops and the month rows it
-- reads are then those of one snapshot, and notes committed after it stay for the relay to apply.
CREATE FUNCTION alcance_fill_cell_values() RETURNS void
    LANGUAGE sql VOLATILE
    AS $$
        DELETE FROM indicator_member_flip;
        DELETE FROM indicator_report_change;
        DELETE FROM indicator_member_year;
        DELETE FROM indicator_report_winner;
        DELETE FROM indicator_cell_value;
        INSERT INTO indicator_member_year (indicator, year_start, dims, part, member, months)
        SELECT indicator, date_trunc('year', period_start::timestamp)::date, dims, part, member,
               bit_or(1 << (extract(month FROM period_start)::integer - 1))
          FROM indicator_member
         WHERE refcount > 0
         GROUP BY 1, 2, 3, 4, 5;
        INSERT INTO indicator_report_winner (indicator, period_kind, period_start, dims, part, member,
                                             event_id, order_key, amount)
        SELECT DISTINCT ON (r.indicator, k.period_kind, k.period_start, r.dims, r.part, r.member)
               r.indicator, k.period_kind, k.period_start, r.dims, r.part, r.member, r.event_id,
               r.order_key, r.amount
          FROM indicator_report AS r CROSS JOIN LATERAL alcance_periods(r.period_start) AS k
         WHERE k.period_kind <> 'month'
         ORDER BY r.indicator, k.period_kind, k.period_start, r.dims, r.part, r.member, r.order_key DESC,
                  r.event_id DESC;
        INSERT INTO indicator_cell_value (indicator, period_kind, period_start, dims, part, kind, value,
                                          members)
        SELECT y.indicator, s.period_kind, (y.year_start + make_interval(months => s.month_offset))::date,
               y.dims, y.part, 'distinct', count(*), count(*)
          FROM indicator_member_year AS y JOIN alcance_year_spans() AS s ON y.months & s.mask <> 0
         GROUP BY 1, 2, 3, 4, 5
        UNION ALL
        SELECT indicator, period_kind, period_start, dims, part, 'latest', sum(amount), count(*)
          FROM indicator_report_winner
         GROUP BY 1, 2, 3, 4, 5;
        INSERT INTO indicator_cell_value_kept DEFAULT VALUES ON CONFLICT DO NOTHING;
    $$;

COMMENT ON TABLE indicator_cell_value_kept IS 'A row while the unlogged cell value tables hold what they were filled with (a crash empties them)';
COMMENT ON TABLE indicator_cell_value IS 'Values of distinct and latest parts per cell, kept by the relay from what the batches note (unlogged: refilled after a crash); read by the relay';
COMMENT ON TABLE indicator_member_year IS 'Members of distinct parts per year, with the months they are live in (bit mask); kept by the relay, unlogged';
COMMENT ON TABLE indicator_report_winner IS 'The winning report per latest part, quarter or year cell and member; kept by the relay, unlogged';
