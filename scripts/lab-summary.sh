#!/usr/bin/env bash
# Short status of the lab after `make lab`: hosts, the Cassandra ring, the metrics store.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
export PATH=$PWD/.venv/bin:$PATH ANSIBLE_NOCOLOR=1 ANSIBLE_DEPRECATION_WARNINGS=0
inv=inventory/lab

echo
echo "== Lab hosts"
scripts/lab.sh status

first_cass=$(ansible-inventory -i "$inv" --graph cassandra 2>/dev/null | awk -F'--' '/--[a-z]/ {print $NF; exit}')
if [[ -n $first_cass ]]; then
  echo
  echo "== Cassandra ring (nodetool status on $first_cass)"
  ansible -i "$inv" "$first_cass" -m ansible.builtin.command -a "nodetool status" 2>/dev/null \
    | sed -n '/^Datacenter/,$p' || echo "nodetool status failed on $first_cass"
fi

echo
echo "== Metrics store"
ansible -i "$inv" mysql -m ansible.builtin.command \
  -a "mariadb -N -e \"SELECT CONCAT(VERSION(), ', ', COUNT(*), ' migrations applied') FROM iact.schema_migrations\"" \
  2>/dev/null | grep -v '^\S* | ' || echo "metrics store not reachable"

echo
echo "== DORA report"
if [[ -f .lab/reports/dora.html ]]; then
  echo "HTML report: $PWD/.lab/reports/dora.html"
else
  echo "not produced yet: run ansible-playbook -i $inv playbooks/dora.yml (it writes the report on the mysql host and copies it here)"
fi

echo
echo "== Web layer (dashboard and JSON API)"
web_host=$(ansible-inventory -i "$inv" --graph web 2>/dev/null | awk -F'--' '/--[a-z]/ {print $NF; exit}')
if [[ -z $web_host ]]; then
  echo "no host in the web group of $inv"
else
  web_addr=$(ansible-inventory -i "$inv" --host "$web_host" 2>/dev/null \
    | python3 -c 'import json, sys; print(json.load(sys.stdin).get("ansible_host", ""))')
  url="https://${web_addr:-$web_host}/"
  if curl -fsS -o /dev/null --max-time 5 --cacert .lab/web-ca/ca.crt "${url}static-floor.txt" 2>/dev/null; then
    echo "Dashboard:  $url  (served by $web_host; TLS signed by the lab CA $PWD/.lab/web-ca/ca.crt)"
  else
    echo "Dashboard:  $url  (not answering yet: run make lab FORCE=1, or see journalctl -u iact-web on $web_host)"
  fi
  echo "Login:      user 'admin' (or 'viewer', read-only); the passwords are vault_web_admin_password and"
  echo "            vault_web_viewer_password in $PWD/$inv/group_vars/all/vault.yml (generated, never committed)"
  echo "API:        ${url}api/ (versions, endpoints; OpenAPI at ${url}api/v1/schema), token: Authorization: Token"
  echo "            <vault_web_api_token_ci> (default limits) or <vault_web_api_token_bench> (raised limits)"
fi
