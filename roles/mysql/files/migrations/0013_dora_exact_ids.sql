-- DORA identifiers compared exactly (issue 12).
--
-- Until now `source`, `source_event_id` and the references were compared by the tables' collation,
-- utf8mb4_unicode_ci: case-, accent- and pad-insensitive, and blind to zero-width characters. So the unique
-- key (source, source_event_id) took `deploy-a` for `Deploy-A`: the second event overwrote the first in
-- place, and every re-ingest reported both as updated. The agent compares ids as Python does, code point
-- by code point; these columns now do the same, with utf8mb4_nopad_bin (binary, no trailing-space padding).
--
-- Safe on an existing database: binary equality implies equality under the old collation, so rows that
-- were distinct stay distinct and no unique key can fail; no row is changed or removed. What the old
-- collation already merged cannot be told apart here (one row holds the later event's values under the
-- earlier event's id): re-ingesting the source files stores both events, and `iact-agent quality run`
-- reports ids that differ only in case, accents or invisible characters (consistency.ids_distinct).
-- Each statement restates its columns exactly (type, nullability, comment), so running it again changes
-- nothing.

ALTER TABLE deployments
  MODIFY COLUMN source VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL
    COMMENT 'system that reported the event (github, gitlab, jenkins, ...)',
  MODIFY COLUMN source_event_id VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL
    COMMENT 'event id in that system; unique per source, compared exactly';

ALTER TABLE changes
  MODIFY COLUMN source VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
  MODIFY COLUMN source_event_id VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL
    COMMENT 'unique per source (for commits: usually the sha), compared exactly',
  MODIFY COLUMN deployment_ref VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NULL
    COMMENT 'source_event_id of the deployment that shipped it, as reported';

ALTER TABLE incidents
  MODIFY COLUMN source VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
  MODIFY COLUMN source_event_id VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL
    COMMENT 'unique per source, compared exactly',
  MODIFY COLUMN deployment_ref VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NULL
    COMMENT 'source_event_id of the deployment that caused it, as reported';

ALTER TABLE deployment_changes
  MODIFY COLUMN change_ref VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL
    COMMENT 'source_event_id of a change, as the deployment listed it';

ALTER TABLE dora_rejected_events
  MODIFY COLUMN source VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
  MODIFY COLUMN event_type VARCHAR(16) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NULL,
  MODIFY COLUMN source_event_id VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NULL;
