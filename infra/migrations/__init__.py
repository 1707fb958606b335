"""Versioned SQL migrations of the evaluation store, applied in name order by `infra.postgres.migrate`."""
