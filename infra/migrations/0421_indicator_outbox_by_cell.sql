-- The outbox's marks by cell. A read served from the snapshots asks whether a change to any indicator it
-- reads is waiting; without an index that question read the whole outbox whenever the answer was no,
-- and the outbox is large exactly when the relay is behind (an outage, sustained overload, a processor
-- run without its relay): at 10M events with 5.6M marks waiting, 370 ms for every such read. The relay
-- also finds every later mark of the cells it publishes through it, and deletes them with the round.
CREATE INDEX indicator_outbox_cell ON indicator_outbox (indicator, period_kind, period_start, dims);
