#!/usr/bin/env bash
# Re-vendor Chart.js from the npm registry: fetch the package with npm's own client, check the tarball
# against the registry's integrity value, copy dist/chart.umd.min.js and the licence, and print the
# values to record in iact_web/vendor.json (tests/unit/test_vendor.py checks the file against it).
# Usage: web/scripts/vendor-chartjs.sh [version]   (default: the version in vendor.json)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
version=${1:-$(python3 -c 'import json,sys; print(next(iter(json.load(open(sys.argv[1])).values()))["version"])' "$here/iact_web/vendor.json")}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack "chart.js@${version}" --silent >/dev/null
tarball="chart.js-${version}.tgz"
expected=$(npm view "chart.js@${version}" dist.integrity)
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
[[ "$expected" == "$actual" ]] || { echo "integrity mismatch: registry $expected, tarball $actual" >&2; exit 1; }
tar xzf "$tarball" package/dist/chart.umd.min.js package/LICENSE.md
install -m 0644 package/dist/chart.umd.min.js "$here/iact_web/static/iact_web/vendor/chart.umd.min.js"
install -m 0644 package/LICENSE.md "$here/iact_web/static/iact_web/vendor/chart.js.LICENSE.md"
echo "version=${version}"
echo "tarball_integrity=${actual}"
echo "sha256=$(sha256sum package/dist/chart.umd.min.js | cut -d' ' -f1)"
