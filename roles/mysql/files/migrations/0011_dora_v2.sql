-- DORA v2: the schema the DORA agent (iact-agent dora) and the quality agent write.
-- Every statement can run twice (IF [NOT] EXISTS), so a fixed file can be re-applied after a failure.
--
-- * deployments.status says `failed` (as the ingest format does), not `failure`.
-- * changes keep the authored time and, for squash/rebase merges, the first commit time of the
--   original commits; the lead time starts at the earliest of the three.
-- * references between events are the source's own ids (`deployment_ref`, deployment_changes.change_ref),
--   resolved when the metrics are computed (FORMAT.md: same source first, else a unique id), because
--   a change or an incident may arrive before the deployment it names. The old numeric
--   deployment_id columns stay for compatibility and are not used.
-- * a change can ship in several deployments (a failed attempt and its retry, staging then
--   production): deployment_changes links them; lead time counts the first production deployment.
-- * incidents.opened_at is renamed started_at (the name of the ingest field and of the metric).
-- * dora_metrics gets the numbers the metrics compute beyond the headline four (deployment days per
--   week, p90 lead time, unattributed incidents, counts of what was left out and why), the data
--   quality score, and the window bounds; benchmark_year is the report year of every class in the row.
-- * dora_rejected_events gets the field, the line and a payload hash (the same bad line ingested
--   twice is one dead letter), and attempts for the retry command.
-- * quality_results gets the category and the evaluated item count of each check.

ALTER TABLE deployments DROP CONSTRAINT IF EXISTS ck_deployments_status;
UPDATE deployments SET status = 'failed' WHERE status = 'failure';
ALTER TABLE deployments
  MODIFY COLUMN status VARCHAR(16) NOT NULL COMMENT 'success, failed (never ran) or rolled_back',
  ADD CONSTRAINT ck_deployments_status CHECK (status IN ('success', 'failed', 'rolled_back'));

ALTER TABLE changes
  ADD COLUMN IF NOT EXISTS authored_at DATETIME(6) NULL COMMENT 'author time of the merged commit' AFTER committed_at,
  ADD COLUMN IF NOT EXISTS first_commit_at DATETIME(6) NULL
    COMMENT 'squash/rebase merges: earliest commit time of the original commits' AFTER authored_at,
  ADD COLUMN IF NOT EXISTS deployment_ref VARCHAR(191) NULL
    COMMENT 'source_event_id of the deployment that shipped it, as reported' AFTER first_commit_at;

CREATE TABLE IF NOT EXISTS deployment_changes (
  deployment_id BIGINT UNSIGNED NOT NULL COMMENT 'deployments.id',
  change_ref VARCHAR(191) NOT NULL COMMENT 'source_event_id of a change, as the deployment listed it',
  PRIMARY KEY (deployment_id, change_ref),
  KEY ix_deployment_changes_ref (change_ref),
  CONSTRAINT fk_deployment_changes_deployment FOREIGN KEY (deployment_id) REFERENCES deployments (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Changes each deployment shipped (change_ids)';

ALTER TABLE incidents CHANGE COLUMN IF EXISTS opened_at started_at DATETIME(6) NOT NULL COMMENT 'when the impact began';
ALTER TABLE incidents
  ADD COLUMN IF NOT EXISTS deployment_ref VARCHAR(191) NULL
    COMMENT 'source_event_id of the deployment that caused it, as reported' AFTER deployment_id;

ALTER TABLE dora_metrics
  MODIFY COLUMN deployment_frequency DOUBLE NULL COMMENT 'production deployments per day',
  MODIFY COLUMN deployment_frequency_class VARCHAR(8) NULL COMMENT 'class of deployment_days_per_week',
  MODIFY COLUMN benchmark_year SMALLINT UNSIGNED NOT NULL COMMENT 'DORA report year of every class in this row',
  ADD COLUMN IF NOT EXISTS window_start DATETIME(6) NULL COMMENT 'window [start, end) in UTC' AFTER computed_on,
  ADD COLUMN IF NOT EXISTS window_end DATETIME(6) NULL AFTER window_start,
  ADD COLUMN IF NOT EXISTS failed_deployments_count INT UNSIGNED NOT NULL DEFAULT 0
    COMMENT 'production attempts with status failed (in no metric)' AFTER deployments_count,
  ADD COLUMN IF NOT EXISTS deployment_days INT UNSIGNED NOT NULL DEFAULT 0 AFTER failed_deployments_count,
  ADD COLUMN IF NOT EXISTS deployment_days_per_week DOUBLE NULL
    COMMENT 'days with a production deployment per week: what the class rates' AFTER deployment_frequency,
  ADD COLUMN IF NOT EXISTS changes_count INT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'changes measured' AFTER deployment_frequency_class,
  ADD COLUMN IF NOT EXISTS lead_time_p90_seconds BIGINT UNSIGNED NULL AFTER lead_time_seconds,
  ADD COLUMN IF NOT EXISTS changes_invalid_count INT UNSIGNED NOT NULL DEFAULT 0
    COMMENT 'deployed before their first commit: left out' AFTER lead_time_class,
  ADD COLUMN IF NOT EXISTS changes_undeployed_count INT UNSIGNED NOT NULL DEFAULT 0 AFTER changes_invalid_count,
  ADD COLUMN IF NOT EXISTS failed_changes_count INT UNSIGNED NOT NULL DEFAULT 0 AFTER changes_undeployed_count,
  ADD COLUMN IF NOT EXISTS incidents_unresolved_count INT UNSIGNED NOT NULL DEFAULT 0 AFTER time_to_restore_class,
  ADD COLUMN IF NOT EXISTS incidents_unlinked_count INT UNSIGNED NOT NULL DEFAULT 0
    COMMENT 'incidents attributed to no deployment: reported, not guessed' AFTER incidents_unresolved_count,
  ADD COLUMN IF NOT EXISTS incidents_invalid_count INT UNSIGNED NOT NULL DEFAULT 0
    COMMENT 'resolved before they started: left out' AFTER incidents_unlinked_count,
  ADD COLUMN IF NOT EXISTS quality_score DOUBLE NULL COMMENT 'data quality score 0-100 of the input at computation' AFTER incidents_invalid_count,
  ADD COLUMN IF NOT EXISTS reasons JSON NULL COMMENT 'why a metric is NULL, per metric' AFTER quality_score;

ALTER TABLE dora_rejected_events
  ADD COLUMN IF NOT EXISTS payload_sha256 CHAR(64) NULL COMMENT 'sha256 of payload: one dead letter per bad line' AFTER payload,
  ADD COLUMN IF NOT EXISTS event_type VARCHAR(16) NULL AFTER payload_sha256,
  ADD COLUMN IF NOT EXISTS source_event_id VARCHAR(191) NULL AFTER event_type,
  ADD COLUMN IF NOT EXISTS field VARCHAR(191) NULL COMMENT 'first offending field' AFTER source_event_id,
  ADD COLUMN IF NOT EXISTS input_name VARCHAR(255) NULL COMMENT 'file (and line) it came from' AFTER field,
  ADD COLUMN IF NOT EXISTS attempts INT UNSIGNED NOT NULL DEFAULT 1 COMMENT 'ingests and retries that rejected it' AFTER input_name,
  ADD COLUMN IF NOT EXISTS last_attempt_at DATETIME(6) NULL AFTER attempts,
  ADD UNIQUE KEY IF NOT EXISTS uq_dora_rejected_payload (source, payload_sha256);

ALTER TABLE quality_results
  ADD COLUMN IF NOT EXISTS category VARCHAR(16) NULL COMMENT 'schema, null, range, consistency, anomaly or score' AFTER check_name,
  ADD COLUMN IF NOT EXISTS evaluated_rows BIGINT UNSIGNED NULL AFTER failing_rows;
