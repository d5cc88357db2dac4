-- Disaster-recovery drills (drill/drill.py, `make drill`): one row per drill with its measured recovery
-- point and recovery time; the full report stays in the JSON/Markdown files named by drill_id.

CREATE TABLE IF NOT EXISTS dr_drills (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  drill_id VARCHAR(64) NOT NULL COMMENT 'also the report file name: drill-<drill_id>.json',
  started_at DATETIME(6) NOT NULL,
  finished_at DATETIME(6) NOT NULL,
  status VARCHAR(16) NOT NULL COMMENT 'success or failure',
  rpo_mysql_s DECIMAL(12, 3) NULL COMMENT 'disaster time minus the newest restored MySQL write, seconds',
  rto_total_s DECIMAL(12, 3) NULL COMMENT 'disaster declared to every service verified, seconds',
  report JSON NULL COMMENT 'RPO, RTO and throughput figures, error if any',
  UNIQUE KEY uq_dr_drills_drill (drill_id),
  KEY ix_dr_drills_time (started_at),
  CONSTRAINT ck_dr_drills_status CHECK (status IN ('success', 'failure'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='DR drill results';
