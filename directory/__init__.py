"""The PLGN directory (art. 8): consent ledger, consent-gated firm records, audited member-state reads."""
