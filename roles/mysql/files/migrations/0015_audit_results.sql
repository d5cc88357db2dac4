-- Compliance and security audit of the running fleet (iact-agent audit, roles/audit, issue 15): one row per
-- run and host in audit_runs, one row per check in audit_results. Written by iact_audit (INSERT only), read by
-- the DORA/operations report (iact_dora) and the health agent's audit check (iact_health).

CREATE TABLE IF NOT EXISTS audit_runs (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  run_id CHAR(36) NOT NULL COMMENT 'UUID of the run, also in its JSON report',
  host VARCHAR(255) NOT NULL COMMENT 'host the audit ran on (and looked at)',
  started_at DATETIME(6) NOT NULL,
  finished_at DATETIME(6) NOT NULL,
  outcome VARCHAR(16) NOT NULL COMMENT 'failed: a check of severity high or above failed; incomplete: a check could not be judged',
  exit_code TINYINT UNSIGNED NOT NULL,
  checks SMALLINT UNSIGNED NOT NULL,
  passed SMALLINT UNSIGNED NOT NULL,
  failed SMALLINT UNSIGNED NOT NULL,
  failed_high SMALLINT UNSIGNED NOT NULL COMMENT 'failed checks of severity high or critical',
  not_applicable SMALLINT UNSIGNED NOT NULL,
  errors SMALLINT UNSIGNED NOT NULL,
  version VARCHAR(32) NOT NULL COMMENT 'iact-agents version that ran the checks',
  UNIQUE KEY uq_audit_runs_run (run_id),
  KEY ix_audit_runs_host_time (host, finished_at),
  KEY ix_audit_runs_time (finished_at),
  CONSTRAINT ck_audit_runs_outcome CHECK (outcome IN ('passed', 'failed', 'incomplete'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Audit runs, one per host and run';

CREATE TABLE IF NOT EXISTS audit_results (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  run_id CHAR(36) NOT NULL,
  host VARCHAR(255) NOT NULL,
  checked_at DATETIME(6) NOT NULL,
  check_id VARCHAR(64) NOT NULL COMMENT 'e.g. rnf002.smtp_relay, mysql.local_infile',
  title VARCHAR(255) NOT NULL,
  reference VARCHAR(255) NOT NULL COMMENT 'CIS item, dev-sec control or project rule the check implements',
  severity VARCHAR(16) NOT NULL,
  status VARCHAR(16) NOT NULL,
  evidence TEXT NOT NULL COMMENT 'what was seen, one line',
  findings JSON NULL COMMENT 'the offending items of a failure',
  UNIQUE KEY uq_audit_results_run_check (run_id, check_id),
  KEY ix_audit_results_check_time (check_id, checked_at),
  KEY ix_audit_results_host_time (host, checked_at),
  CONSTRAINT fk_audit_results_run FOREIGN KEY (run_id) REFERENCES audit_runs (run_id) ON DELETE CASCADE,
  CONSTRAINT ck_audit_results_severity CHECK (severity IN ('info', 'low', 'medium', 'high', 'critical')),
  CONSTRAINT ck_audit_results_status CHECK (status IN ('pass', 'fail', 'not_applicable', 'error'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Audit check results, one per check and run';
