#!/usr/bin/env bash
# Short status of the lab after `make lab`: hosts, the Cassandra ring, the metrics store.
set -uo pipefail
cd "$(dirname "$0")/.."
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
