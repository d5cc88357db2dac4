-- Django's session table (django.contrib.sessions, SESSION_ENGINE = "django.contrib.sessions.backends.db"),
-- exactly as Django's migration 0001 creates it on MySQL/MariaDB. The app's user cannot run DDL: run
-- `manage.py migrate sessions --fake` once so Django records the migration without creating the table.

CREATE TABLE IF NOT EXISTS django_session (
  session_key VARCHAR(40) NOT NULL PRIMARY KEY,
  session_data LONGTEXT NOT NULL,
  expire_date DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE INDEX IF NOT EXISTS django_session_expire_date_a5c62663 ON django_session (expire_date);
