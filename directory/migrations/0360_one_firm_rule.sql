-- What a member state may see of a firm is decided in one place: the policy `firm_for_state` and the view
-- `firm_shared` (0355), both from `current_authorisation`. The function `shared_fields` (0351) worked the
-- same rule out of the ledger for the first view; nothing calls it since 0355, and any role could still
-- run it, so it goes rather than drift from the rule in force.
DROP FUNCTION {schema}.shared_fields(text);
