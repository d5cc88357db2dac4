-- Data-quality agent results: one row per check per run.

CREATE TABLE IF NOT EXISTS quality_results (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  run_id CHAR(36) NOT NULL COMMENT 'UUID shared by all results of one run',
  checked_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  dataset VARCHAR(128) NOT NULL COMMENT 'table or keyspace.table checked',
  check_name VARCHAR(128) NOT NULL,
  status VARCHAR(16) NOT NULL COMMENT 'pass, fail or error',
  observed_value DOUBLE NULL,
  threshold DOUBLE NULL,
  failing_rows BIGINT UNSIGNED NULL,
  detail JSON NULL,
  KEY ix_quality_results_dataset_time (dataset, check_name, checked_at),
  KEY ix_quality_results_run (run_id),
  KEY ix_quality_results_status_time (status, checked_at),
  CONSTRAINT ck_quality_results_status CHECK (status IN ('pass', 'fail', 'error'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Data-quality check results';
