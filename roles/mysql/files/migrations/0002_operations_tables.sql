-- Health agent results, the alerts it raises, and the log of scheduled jobs (backup, cleanup, ...).

CREATE TABLE IF NOT EXISTS health_checks (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  checked_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  host VARCHAR(255) NOT NULL COMMENT 'host the check ran against',
  component VARCHAR(64) NOT NULL COMMENT 'mysql, cassandra, disk, backup, ...',
  check_name VARCHAR(128) NOT NULL,
  status VARCHAR(16) NOT NULL COMMENT 'ok, warning, critical or unknown',
  latency_ms INT UNSIGNED NULL,
  detail JSON NULL COMMENT 'check-specific measurements',
  KEY ix_health_checks_component_time (component, check_name, checked_at),
  KEY ix_health_checks_host_time (host, checked_at),
  KEY ix_health_checks_time (checked_at),
  CONSTRAINT ck_health_checks_status CHECK (status IN ('ok', 'warning', 'critical', 'unknown'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Health check results';

CREATE TABLE IF NOT EXISTS alerts (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  alert_key VARCHAR(191) NOT NULL COMMENT 'deduplication key, e.g. component:check:host',
  component VARCHAR(64) NOT NULL,
  host VARCHAR(255) NULL,
  severity VARCHAR(16) NOT NULL COMMENT 'warning or critical',
  status VARCHAR(16) NOT NULL DEFAULT 'open' COMMENT 'open, acknowledged or resolved',
  summary VARCHAR(512) NOT NULL,
  detail JSON NULL,
  occurrences INT UNSIGNED NOT NULL DEFAULT 1,
  first_seen_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  last_seen_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  notified_at DATETIME(6) NULL,
  resolved_at DATETIME(6) NULL,
  open_key VARCHAR(191) AS (IF(status = 'resolved', NULL, alert_key)) PERSISTENT
    COMMENT 'alert_key while not resolved: at most one unresolved alert per key',
  UNIQUE KEY uq_alerts_open_key (open_key),
  KEY ix_alerts_status (status, severity, last_seen_at),
  KEY ix_alerts_component_time (component, first_seen_at),
  KEY ix_alerts_key_time (alert_key, first_seen_at),
  CONSTRAINT ck_alerts_severity CHECK (severity IN ('warning', 'critical')),
  CONSTRAINT ck_alerts_status CHECK (status IN ('open', 'acknowledged', 'resolved'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Alerts raised by the health agent';

CREATE TABLE IF NOT EXISTS job_runs (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  job_name VARCHAR(128) NOT NULL COMMENT 'backup, session_cleanup, dora_compute, ...',
  host VARCHAR(255) NOT NULL,
  started_at DATETIME(6) NOT NULL,
  finished_at DATETIME(6) NULL COMMENT 'NULL while running',
  status VARCHAR(16) NOT NULL COMMENT 'running, success or failure',
  exit_code SMALLINT NULL,
  output_bytes BIGINT UNSIGNED NULL COMMENT 'size of the job output (e.g. the backup)',
  message VARCHAR(1024) NULL COMMENT 'short summary or error',
  KEY ix_job_runs_job_time (job_name, started_at),
  KEY ix_job_runs_status_time (status, started_at),
  KEY ix_job_runs_host_time (host, started_at),
  CONSTRAINT ck_job_runs_status CHECK (status IN ('running', 'success', 'failure'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Runs of scheduled jobs';
