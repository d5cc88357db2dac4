#!/usr/bin/env bash
# The repository's own source files of one kind, for the lint gates (make lint) and their coverage test:
#   scripts/source-files.sh python   every tracked Python file (*.py, or a python shebang without a suffix)
#   scripts/source-files.sh shell    every tracked sh/bash script (*.sh, or an sh/bash shebang); not templates
set -euo pipefail
cd "$(dirname "$0")/.."

kind=${1:?usage: $0 python|shell}
git ls-files -z | while IFS= read -r -d '' f; do
  [[ -f $f && ! -L $f ]] || continue
  case $f in *.j2 | *.md | *.yml | *.yaml | *.json) continue ;; esac
  first=$(head -n 1 -- "$f" 2>/dev/null | tr -d '\0' || true)
  case $kind in
    python) if [[ $f == *.py || $first =~ ^\#!.*python ]]; then printf '%s\n' "$f"; fi ;;
    shell) if [[ $f == *.sh || $first =~ ^\#!.*(/|[[:space:]])(ba)?sh([[:space:]]|$) ]]; then printf '%s\n' "$f"; fi ;;
    *) echo "usage: $0 python|shell" >&2; exit 2 ;;
  esac
done
