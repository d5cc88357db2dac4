-- The web layer (web/, iact-web): API clients, rate-limit counters, the audit trail and alert
-- acknowledgements. The app's Django models over these tables are unmanaged: this file is their one owner.
-- Django's own tables (auth_*, django_content_type, django_admin_log, django_migrations) are created by
-- `iact-web migrate`; django_session by 0004. Every statement can run twice.

-- Machine clients of the API, one token each. Only the token's sha256 is stored. Clients are revoked, never
-- deleted, so the audit trail's `client:<name>` keeps its meaning.
CREATE TABLE IF NOT EXISTS web_api_clients (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(64) NOT NULL,
  description VARCHAR(255) NOT NULL DEFAULT '',
  token_sha256 CHAR(64) NOT NULL COMMENT 'sha256 hex of the token; the token itself is never stored',
  token_prefix VARCHAR(8) NOT NULL COMMENT 'first characters of the token, to tell tokens apart',
  managed_by VARCHAR(8) NOT NULL DEFAULT 'admin'
    COMMENT 'vault: owned by iact-web sync_accounts (revoked when absent from its file); admin: made in the admin',
  burst_limit INT UNSIGNED NULL COMMENT 'requests per burst window; NULL: the configured default',
  sustained_limit INT UNSIGNED NULL COMMENT 'requests per sustained window; NULL: the configured default',
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  revoked_at DATETIME(6) NULL COMMENT 'set: the token is refused',
  last_used_at DATETIME(6) NULL COMMENT 'last token use, to the audit interval',
  UNIQUE KEY uq_web_api_clients_name (name),
  UNIQUE KEY uq_web_api_clients_token (token_sha256),
  CONSTRAINT ck_web_api_clients_managed CHECK (managed_by IN ('vault', 'admin'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='API clients of the web layer';

-- Rate-limit counters: one row per client and policy, rolled over and incremented by one atomic
-- INSERT ... ON DUPLICATE KEY UPDATE ... RETURNING (web/iact_web/core/ratelimit.py). Rows whose windows
-- ended two windows ago weigh nothing and are pruned by `iact-web prune_ratelimits`.
CREATE TABLE IF NOT EXISTS web_rate_limits (
  client_key VARCHAR(191) NOT NULL COMMENT 'client:<id>, user:<id> or addr:<address>',
  policy VARCHAR(16) NOT NULL COMMENT 'burst or sustained',
  window_start_us BIGINT UNSIGNED NOT NULL COMMENT 'start of the current window, microseconds since the epoch',
  hits INT UNSIGNED NOT NULL COMMENT 'accepted requests in the current window',
  prev_hits INT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'accepted requests in the window before it',
  PRIMARY KEY (client_key, policy),
  KEY ix_web_rate_limits_window (policy, window_start_us)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Rate-limit counters of the web layer';

-- The audit trail: append-only (iact_app has INSERT and SELECT, no UPDATE or DELETE).
CREATE TABLE IF NOT EXISTS web_audit_log (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  event VARCHAR(32) NOT NULL
    COMMENT 'login, login_failed, logout, admin_change, alert_ack, token_use, token_rejected, account_sync',
  actor VARCHAR(150) NOT NULL DEFAULT '' COMMENT 'user name, client:<name>, or empty for anonymous',
  client_addr VARCHAR(45) NULL,
  object_type VARCHAR(64) NULL,
  object_id VARCHAR(191) NULL,
  detail JSON NULL,
  KEY ix_web_audit_log_time (at),
  KEY ix_web_audit_log_event_time (event, at),
  KEY ix_web_audit_log_actor_time (actor, at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Audit trail of the web layer';

-- Who acknowledged which alert, when, at which severity, and why. The state the health agent reads is
-- alerts.status = 'acknowledged' (set in the same transaction; iact_app may UPDATE only that column).
CREATE TABLE IF NOT EXISTS alert_acknowledgements (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  alert_id BIGINT UNSIGNED NOT NULL COMMENT 'alerts.id',
  alert_key VARCHAR(191) NOT NULL COMMENT 'copy of alerts.alert_key, for reading without a join',
  severity VARCHAR(16) NOT NULL COMMENT 'severity of the alert when it was acknowledged',
  acknowledged_by VARCHAR(150) NOT NULL COMMENT 'user name or client:<name>',
  acknowledged_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  note VARCHAR(512) NOT NULL DEFAULT '',
  KEY ix_alert_acknowledgements_alert (alert_id, acknowledged_at),
  KEY ix_alert_acknowledgements_time (acknowledged_at),
  CONSTRAINT fk_alert_acknowledgements_alert FOREIGN KEY (alert_id) REFERENCES alerts (id),
  CONSTRAINT ck_alert_acknowledgements_severity CHECK (severity IN ('warning', 'critical'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Alert acknowledgements';
