-- Health agent alerting: one row per notification attempt, on every channel, successful or not.
-- The consecutive-failure count needs no table of its own: it is read from health_checks.

CREATE TABLE IF NOT EXISTS alert_notifications (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  alert_id BIGINT UNSIGNED NOT NULL COMMENT 'alerts.id',
  alert_key VARCHAR(191) NOT NULL COMMENT 'copy of alerts.alert_key, for reading without a join',
  event VARCHAR(16) NOT NULL COMMENT 'open, reminder, escalated or resolved',
  channel VARCHAR(32) NOT NULL COMMENT 'syslog, mailbox or webhook',
  success TINYINT(1) NOT NULL,
  reason VARCHAR(512) NULL COMMENT 'why the attempt failed (or the HTTP status)',
  attempted_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY ix_alert_notifications_alert (alert_id, attempted_at),
  KEY ix_alert_notifications_time (attempted_at),
  CONSTRAINT fk_alert_notifications_alert FOREIGN KEY (alert_id) REFERENCES alerts (id),
  CONSTRAINT ck_alert_notifications_event CHECK (event IN ('open', 'reminder', 'escalated', 'resolved'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Notification attempts of the health agent';
