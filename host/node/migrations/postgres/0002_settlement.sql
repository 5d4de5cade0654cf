-- Settlement: a job's client nonce and spec hash (the escrow's job id), and
-- the transaction that submitted its result to the escrow.
ALTER TABLE jobs ADD COLUMN nonce TEXT;
ALTER TABLE jobs ADD COLUMN spec_hash TEXT;
ALTER TABLE jobs ADD COLUMN settle_tx TEXT;
CREATE INDEX jobs_spec_hash ON jobs (spec_hash);
