-- The dashboard's history plots select jobs by finish time.
CREATE INDEX jobs_finished ON jobs (finished_at);
