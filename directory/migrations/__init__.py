"""SQL migrations of the PLGN directory's own schema, applied in name order by `directory.schema.migrate`."""
