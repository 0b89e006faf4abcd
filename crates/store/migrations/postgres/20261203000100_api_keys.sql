-- API keys (issue 13). The secret token is never stored: token_hash is the lowercase hex
-- SHA-256 of it. A revoked key keeps its row (its sessions and executions name it as owner).
CREATE TABLE api_keys (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    tier        TEXT NOT NULL,
    admin       BOOLEAN NOT NULL DEFAULT FALSE,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
