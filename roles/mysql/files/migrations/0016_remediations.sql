-- Remediation decisions of `iact-agent remediate` (run by the health job, issue 18): one row per decision of an
-- action whose trigger fired on a host, whatever became of it (acted, failed, dry_run, skipped by a guardrail),
-- with the evidence it was taken on. The budgets are counted from these rows (acted and failed attempts of an
-- action on a host in the last hour and day). Written and read by iact_health.

CREATE TABLE IF NOT EXISTS remediations (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  decided_at DATETIME(6) NOT NULL,
  host VARCHAR(255) NOT NULL COMMENT 'host the action was decided on (and would act on)',
  action VARCHAR(64) NOT NULL COMMENT 'name in the allow-list (iact_agents.remediate.actions)',
  target VARCHAR(128) NOT NULL COMMENT 'what it acts on, e.g. the systemd unit',
  trigger_key VARCHAR(191) NOT NULL COMMENT 'component:check of the health result that fired it',
  outcome VARCHAR(16) NOT NULL,
  guardrail VARCHAR(32) NULL COMMENT 'for skipped: budget, lock or peers',
  dry_run TINYINT(1) NOT NULL,
  summary VARCHAR(512) NOT NULL,
  command VARCHAR(512) NULL COMMENT 'the command run (or that a dry run would run)',
  duration_ms INT UNSIGNED NULL,
  evidence JSON NOT NULL COMMENT 'the health results, budget counts, peer reports and command output',
  KEY ix_remediations_budget (host, action, outcome, decided_at),
  KEY ix_remediations_time (decided_at),
  CONSTRAINT ck_remediations_outcome CHECK (outcome IN ('acted', 'failed', 'dry_run', 'skipped')),
  CONSTRAINT ck_remediations_guardrail CHECK (guardrail IS NULL OR guardrail IN ('budget', 'lock', 'peers'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Remediation decisions';
