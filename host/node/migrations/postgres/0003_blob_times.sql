-- When each blob was stored, so that unreferenced ones can be collected
-- once no upload in flight can still need them. Blobs stored before this
-- migration count as old.
ALTER TABLE blobs ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
