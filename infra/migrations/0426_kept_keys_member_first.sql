-- The relay finds a member year or a winner only by its whole key, never by a prefix of it, so the key's
-- order is free: with the member first (it differs between rows where the cell columns repeat), most
-- comparisons of an index descent or of the relay's sorts end at the first column. Measured on the
-- notes of 25k records (2 cores): the member-year upsert 191 → 139 ms, the winners' 118 → 87 ms.
ALTER TABLE indicator_member_year
    DROP CONSTRAINT indicator_member_year_pkey,
    ADD PRIMARY KEY (member, part, dims, year_start, indicator);
ALTER TABLE indicator_report_winner
    DROP CONSTRAINT indicator_report_winner_pkey,
    ADD PRIMARY KEY (member, part, dims, period_start, period_kind, indicator);
