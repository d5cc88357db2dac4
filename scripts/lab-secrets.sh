#!/usr/bin/env bash
# Generate the lab's secrets into inventory/lab/group_vars/all/vault.yml (ignored by git, mode 0600).
# Existing values are kept, so re-runs change nothing; new names are added. Nothing is printed.
# Production keeps the same names in an ansible-vault encrypted file (see inventory/production.example).
set -euo pipefail
umask 077
out=${1:-$(cd "$(dirname "$0")/.." && pwd)/inventory/lab/group_vars/all/vault.yml}
names=(
  vault_cassandra_admin_password
  vault_cassandra_collector_password
  vault_cassandra_reader_password
  vault_mysql_health_password
  vault_mysql_dora_password
  vault_mysql_quality_password
  vault_mysql_backup_password
  vault_mysql_app_password
  vault_mysql_audit_password
  vault_mysql_audit_read_password
  vault_backup_encryption_passphrase
)
touch "$out"
chmod 0600 "$out"
grep -q '^---' "$out" || printf -- '---\n# Generated lab secrets (scripts/lab-secrets.sh). Never commit this file.\n' >"$out"
for name in "${names[@]}"; do
  grep -q "^${name}:" "$out" && continue
  printf '%s: "%s"\n' "$name" "$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)" >>"$out"
done
