"""Operations pages: health, alerts and their acknowledgement, job runs, backups, DR drills, quality."""
