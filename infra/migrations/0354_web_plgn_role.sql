-- PLGN's own client: a web credential of role `plgn` may withdraw directory consents
-- (POST /api/v1/consents/{id}/withdrawal) and read nothing else.
ALTER TABLE web_credential DROP CONSTRAINT web_credential_role_check;
ALTER TABLE web_credential ADD CONSTRAINT web_credential_role_check
    CHECK (role IN ('coordinator', 'developer', 'external', 'state', 'plgn'));
ALTER TABLE web_session DROP CONSTRAINT web_session_role_check;
ALTER TABLE web_session ADD CONSTRAINT web_session_role_check
    CHECK (role IN ('coordinator', 'developer', 'external', 'state', 'plgn'));
