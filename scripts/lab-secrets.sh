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
  vault_cassandra_jmx_password
  vault_mysql_health_password
  vault_mysql_dora_password
  vault_mysql_quality_password
  vault_mysql_backup_password
  vault_mysql_app_password
  vault_mysql_audit_password
  vault_mysql_audit_read_password
  vault_web_secret_key:64
  vault_web_admin_password
  vault_web_viewer_password
  vault_web_api_token_ci:48
  vault_web_api_token_bench:48
  vault_backup_manifest_key
)
touch "$out"
chmod 0600 "$out"
grep -q '^---' "$out" || printf -- '---\n# Generated lab secrets (scripts/lab-secrets.sh). Never commit this file.\n' >"$out"
# NAME or NAME:LENGTH (default 32 characters).
for entry in "${names[@]}"; do
  name=${entry%%:*} len=32
  [[ $entry == *:* ]] && len=${entry##*:}
  grep -q "^${name}:" "$out" && continue
  printf '%s: "%s"\n' "$name" "$(head -c $((len * 2)) /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | head -c "$len")" >>"$out"
done
# Retired: nothing ever read it (backups are encrypted to the age key pair below).
sed -i '/^vault_backup_encryption_passphrase:/d' "$out"
# The age key pair of the backups: the sources encrypt to the public key (backup_age_recipients), only the
# restore playbooks and the DR drill use the private key.
if ! grep -q '^vault_backup_age_identity:' "$out"; then
  command -v age-keygen >/dev/null || { echo "lab-secrets: age-keygen is missing: apt-get install age (make engine does)" >&2; exit 1; }
  identity=$(age-keygen 2>/dev/null | grep '^AGE-SECRET-KEY-1')
  printf 'vault_backup_age_identity: "%s"\n' "$identity" >>"$out"
  sed -i '/^vault_backup_age_recipient:/d' "$out"
fi
if ! grep -q '^vault_backup_age_recipient:' "$out"; then
  command -v age-keygen >/dev/null || { echo "lab-secrets: age-keygen is missing: apt-get install age (make engine does)" >&2; exit 1; }
  recipient=$(sed -n 's/^vault_backup_age_identity: "\(.*\)"$/\1/p' "$out" | age-keygen -y)
  printf 'vault_backup_age_recipient: "%s"\n' "$recipient" >>"$out"
fi
