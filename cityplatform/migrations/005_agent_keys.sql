-- Enrolled agents' public keys, shared by every receiver on this database (they were keys_dir/<agent>.pem
-- files on each receiver's machine). One row per agent: its current key; `--enrol --replace` rotates it
-- in place, `--revoke` sets revoked_at (the row stays, so that a key file left in an old keys_dir is not
-- imported again on the next start).
CREATE TABLE agent_keys (
    agent_id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,  -- protocol.signing.key_id of the PEM: what the box prints
    pem TEXT NOT NULL,  -- the Ed25519 public key, SubjectPublicKeyInfo PEM
    enrolled_at DOUBLE PRECISION NOT NULL,
    origin TEXT NOT NULL,  -- 'enrol', or the key file it was imported from
    revoked_at DOUBLE PRECISION  -- NULL: trusted
);
