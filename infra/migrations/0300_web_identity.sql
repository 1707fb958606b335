-- Who may read the web app and the query API: bearer tokens and one-time login links (credentials),
-- and browser sessions. Only the SHA-256 of each secret is stored: the secrets are 256-bit random
-- strings, so a slow password hash would add latency to every request without adding protection.
CREATE TABLE web_credential (
    id            uuid        PRIMARY KEY,
    kind          text        NOT NULL CHECK (kind IN ('token', 'login_link')),
    name          text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    role          text        NOT NULL CHECK (role IN ('coordinator', 'developer', 'external', 'state')),
    member_state  char(2)     REFERENCES country (iso2),
    secret_sha256 bytea       NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    used_at       timestamptz,
    revoked_at    timestamptz,
    last_used_at  timestamptz,
    CHECK ((role = 'state') = (member_state IS NOT NULL))
);
-- A name picks one live credential for `alcance token revoke NAME`.
CREATE UNIQUE INDEX web_credential_live_name ON web_credential (name) WHERE revoked_at IS NULL AND kind = 'token';

CREATE TABLE web_session (
    secret_sha256 bytea       PRIMARY KEY CHECK (length(secret_sha256) = 32),
    credential_id uuid        REFERENCES web_credential (id) ON DELETE CASCADE,
    name          text        NOT NULL,
    role          text        NOT NULL CHECK (role IN ('coordinator', 'developer', 'external', 'state')),
    member_state  char(2)     REFERENCES country (iso2),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX web_session_credential ON web_session (credential_id);

COMMENT ON TABLE web_credential IS 'Bearer tokens (kind token) and one-time login links (kind login_link) of the web app; secrets stored as SHA-256 only.';
COMMENT ON COLUMN web_credential.member_state IS 'ALADI member state of a state-role identity (ISO 3166-1 alpha-2); NULL for every other role.';
COMMENT ON TABLE web_session IS 'Browser sessions, keyed by the SHA-256 of the cookie value; revoking the credential a session came from ends it.';
