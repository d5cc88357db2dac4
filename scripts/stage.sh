#!/usr/bin/env bash
# Time the stages of `make test` and print them at the end, passed or not.
#
#   scripts/stage.sh run <name> <command...>   run one stage, append "<name> <seconds> <status>" to the log
#   scripts/stage.sh molecule <scenario>       a molecule scenario, each step timed as its own stage
#   scripts/stage.sh report                    print the table of every stage in the log
#
# The log is $IACT_STAGE_LOG (default .stages.tsv in the checkout); `make test` empties it first. The lines
# of a molecule run that name a failure (pytest's FAILED/ERROR summary lines, Ansible's fatal: lines, failed
# assertions) are also kept in <log>.failures and printed after the table: a CI log shown only by its tail
# still says which test failed.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
log=${IACT_STAGE_LOG:-$here/.stages.tsv}
failures=$log.failures

run() {
  local name=$1 start status=0
  shift
  echo "== ${name}"
  start=$(date +%s)
  "$@" || status=$?
  printf '%s\t%s\t%s\n' "$name" "$(($(date +%s) - start))" "$([[ $status == 0 ]] && echo ok || echo "FAILED ($status)")" >>"$log"
  return "$status"
}

# `molecule test` for one scenario; each of its actions (converge, idempotence, verify, ...) is logged as a
# stage of its own, timed from molecule's "<scenario> ➜ <action>: Executing" / "Executed" lines.
molecule_scenario() {
  local scenario=$1 start status=0
  start=$(date +%s)
  molecule test -s "$scenario" 2>&1 | python3 -u -c '
import re
import sys
import time

log, scenario, failures = sys.argv[1], sys.argv[2], sys.argv[3]
ansi = re.compile(r"\x1b\[[0-9;]*m")
# pytest summary lines (also inside an Ansible debug list; the unexpected skips of conftest.py), fatal tasks,
# failed assertions
failure = re.compile(r"(?:^|\")((?:FAILED|ERROR|UNEXPECTED SKIP) \S+::\S+.*?|fatal: \[.*|\"msg\": \".*(?:exited|failed).*)\"?,?$")
kept = 0
# "default ➜ converge: Executing" on a terminal, "[default > converge] Executing" otherwise
step = re.compile(r"(?:(\S+) \u279c (\S+):|\[(\S+) > (\S+)\]) (Executing|Executed: (.*))$")
began = {}
for line in sys.stdin:
    sys.stdout.write(line)
    plain = ansi.sub("", line).strip()
    f = failure.search(plain)
    if f and kept < 60:
        kept += 1
        with open(failures, "a", encoding="utf-8") as fh:
            fh.write(f"  {scenario}: {f.group(1)[:400]}\n")
    m = step.search(plain)
    if not m or (m.group(1) or m.group(3)) != scenario:
        continue
    action = m.group(2) or m.group(4)
    if m.group(5) == "Executing":
        began[action] = time.monotonic()
    elif action in began:
        seconds = round(time.monotonic() - began.pop(action))
        status = "ok" if m.group(6).startswith("Successful") else m.group(6)
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"  {scenario}: {action}\t{seconds}\t{status}\n")
' "$log" "$scenario" "$failures" || status=$?
  printf '%s\t%s\t%s\n' "molecule ${scenario}" "$(($(date +%s) - start))" \
    "$([[ $status == 0 ]] && echo ok || echo "FAILED ($status)")" >>"$log"
  [[ $status == 0 ]] || echo "molecule scenario '${scenario}' failed (see above)"
  return "$status"
}

report() {
  [[ -s $log ]] || return 0
  python3 - "$log" <<'PY'
import sys

rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
total = sum(int(r[1]) for r in rows if not r[0].startswith(" "))  # indented: steps of the stage below
width = max(len(r[0]) for r in rows)
print("\n== stage times")
for name, seconds, status in rows:
    s = int(seconds)
    print(f"  {name:<{width}}  {s // 60:3d} min {s % 60:02d} s  {status}")
print(f"  {'total':<{width}}  {total // 60:3d} min {total % 60:02d} s")
PY
  if [[ -s $failures ]]; then
    echo
    echo "== failures named in the output above"
    cat "$failures"
  fi
}

case ${1:-} in
  run) shift; run "$@" ;;
  molecule) shift; molecule_scenario "$@" ;;
  report) report ;;
  reset) : >"$log"; : >"$failures" ;;
  *) echo "usage: $0 run <name> <command...> | molecule <scenario> | report | reset" >&2; exit 2 ;;
esac
