-- Every Redis credential issued to an edge node (`backroom edge credentials NODE`), kept after
-- it is replaced by a new one or revoked (`backroom edge revoke NODE`): a node's history.
-- The password is never stored; the ACL user in Redis is the live credential.
CREATE TABLE edge_credentials (
    id          bigserial PRIMARY KEY,
    node_id     text NOT NULL,
    redis_user  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL,
    replaced_at timestamptz,
    revoked_at  timestamptz,
    revoked_by  text
);
-- at most one live (neither replaced nor revoked) credential per node
CREATE UNIQUE INDEX edge_credentials_live_idx ON edge_credentials (node_id)
    WHERE replaced_at IS NULL AND revoked_at IS NULL;
CREATE INDEX edge_credentials_node_idx ON edge_credentials (node_id, created_at DESC);
