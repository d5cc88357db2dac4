-- DORA source data: deployments, the commits they shipped, incidents, and rejected events.
-- Every ingested row carries (source, source_event_id), unique, so re-ingesting an event is a no-op
-- (INSERT ... ON DUPLICATE KEY UPDATE or INSERT IGNORE).

CREATE TABLE IF NOT EXISTS deployments (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  source VARCHAR(64) NOT NULL COMMENT 'system that reported the event (github, gitlab, jenkins, ...)',
  source_event_id VARCHAR(191) NOT NULL COMMENT 'event id in that system; unique per source',
  service VARCHAR(128) NOT NULL,
  environment VARCHAR(64) NOT NULL DEFAULT 'production',
  version VARCHAR(128) NULL COMMENT 'release or tag deployed',
  commit_sha VARCHAR(64) NULL COMMENT 'head commit deployed',
  status VARCHAR(16) NOT NULL COMMENT 'success, failure or rolled_back',
  started_at DATETIME(6) NULL,
  finished_at DATETIME(6) NOT NULL COMMENT 'deployment time used by the metrics (UTC)',
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  UNIQUE KEY uq_deployments_source_event (source, source_event_id),
  KEY ix_deployments_service_time (service, environment, finished_at),
  KEY ix_deployments_time (finished_at),
  KEY ix_deployments_commit (commit_sha),
  CONSTRAINT ck_deployments_status CHECK (status IN ('success', 'failure', 'rolled_back'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Deployments per service';

CREATE TABLE IF NOT EXISTS changes (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  source VARCHAR(64) NOT NULL,
  source_event_id VARCHAR(191) NOT NULL COMMENT 'unique per source (for commits: usually the sha)',
  deployment_id BIGINT UNSIGNED NULL COMMENT 'deployment that shipped the commit; NULL until deployed',
  service VARCHAR(128) NOT NULL,
  commit_sha VARCHAR(64) NOT NULL,
  committed_at DATETIME(6) NOT NULL COMMENT 'commit time: lead time = deployment finished_at - committed_at',
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  UNIQUE KEY uq_changes_source_event (source, source_event_id),
  KEY ix_changes_deployment (deployment_id),
  KEY ix_changes_service_time (service, committed_at),
  KEY ix_changes_commit (commit_sha),
  CONSTRAINT fk_changes_deployment FOREIGN KEY (deployment_id) REFERENCES deployments (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Commits and the deployment that shipped them';

CREATE TABLE IF NOT EXISTS incidents (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  source VARCHAR(64) NOT NULL,
  source_event_id VARCHAR(191) NOT NULL,
  deployment_id BIGINT UNSIGNED NULL COMMENT 'deployment that caused the incident, when known (change failure)',
  service VARCHAR(128) NOT NULL,
  environment VARCHAR(64) NOT NULL DEFAULT 'production',
  severity VARCHAR(16) NOT NULL DEFAULT 'unknown',
  title VARCHAR(255) NOT NULL DEFAULT '',
  opened_at DATETIME(6) NOT NULL,
  resolved_at DATETIME(6) NULL COMMENT 'NULL while open; restore time = resolved_at - opened_at',
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  UNIQUE KEY uq_incidents_source_event (source, source_event_id),
  KEY ix_incidents_service_time (service, environment, opened_at),
  KEY ix_incidents_deployment (deployment_id),
  KEY ix_incidents_open (resolved_at),
  CONSTRAINT fk_incidents_deployment FOREIGN KEY (deployment_id) REFERENCES deployments (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Production incidents';

CREATE TABLE IF NOT EXISTS dora_metrics (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  service VARCHAR(128) NOT NULL,
  window_days SMALLINT UNSIGNED NOT NULL COMMENT 'length of the window ending on computed_on (e.g. 7, 30, 90)',
  computed_on DATE NOT NULL COMMENT 'last day of the window (UTC)',
  benchmark_year SMALLINT UNSIGNED NOT NULL COMMENT 'DORA report year whose thresholds gave the classes',
  deployments_count INT UNSIGNED NOT NULL DEFAULT 0,
  incidents_count INT UNSIGNED NOT NULL DEFAULT 0,
  deployment_frequency DOUBLE NULL COMMENT 'successful deployments per day',
  deployment_frequency_class VARCHAR(8) NULL,
  lead_time_seconds BIGINT UNSIGNED NULL COMMENT 'median commit-to-deploy time',
  lead_time_class VARCHAR(8) NULL,
  change_failure_rate DOUBLE NULL COMMENT 'failed deployments / deployments, 0..1',
  change_failure_rate_class VARCHAR(8) NULL,
  time_to_restore_seconds BIGINT UNSIGNED NULL COMMENT 'median incident open-to-resolved time',
  time_to_restore_class VARCHAR(8) NULL,
  computed_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  UNIQUE KEY uq_dora_metrics_snapshot (service, window_days, computed_on),
  KEY ix_dora_metrics_day (computed_on),
  CONSTRAINT ck_dora_metrics_df_class CHECK (deployment_frequency_class IN ('elite', 'high', 'medium', 'low')),
  CONSTRAINT ck_dora_metrics_lt_class CHECK (lead_time_class IN ('elite', 'high', 'medium', 'low')),
  CONSTRAINT ck_dora_metrics_cfr_class CHECK (change_failure_rate_class IN ('elite', 'high', 'medium', 'low')),
  CONSTRAINT ck_dora_metrics_ttr_class CHECK (time_to_restore_class IN ('elite', 'high', 'medium', 'low'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Permanent DORA snapshots';

CREATE TABLE IF NOT EXISTS dora_rejected_events (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  source VARCHAR(64) NOT NULL,
  payload LONGTEXT NOT NULL COMMENT 'raw event as received',
  reason VARCHAR(1024) NOT NULL COMMENT 'why it was rejected',
  received_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  reprocessed_at DATETIME(6) NULL COMMENT 'set when a later run ingested it; NULL = still pending',
  KEY ix_dora_rejected_pending (reprocessed_at, received_at),
  KEY ix_dora_rejected_source_time (source, received_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Dead letters of the DORA agent';
