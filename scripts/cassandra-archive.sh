#!/usr/bin/env bash
# Assemble the official Apache Cassandra release from Maven Central into an archive laid out like
# the binary tarball (apache-cassandra-<version>/lib/*.jar), for the role's `archive` install method.
#
# Apache's download site is unreachable here; Maven Central serves the very same server jar and its
# runtime dependencies. Tries the published binary tarball first, then assembles.
#
# Usage: scripts/cassandra-archive.sh [VERSION]    (prints the archive path and writes <archive>.sha256)
# Cache: $IACT_CACHE (default ~/.cache/iact-ops), outside git. Re-runs are no-ops.
set -euo pipefail

version=${1:-${CASSANDRA_VERSION:-5.0.8}}
cache=${IACT_CACHE:-$HOME/.cache/iact-ops}
name=apache-cassandra-${version}
archive=$cache/cassandra/${name}-bin.tar.gz

log() { printf '%s\n' "cassandra-archive: $*" >&2; }

if [[ -s $archive && -s $archive.sha256 ]] && (cd "$(dirname "$archive")" && sha256sum --status -c "$(basename "$archive").sha256"); then
  printf '%s\n' "$archive"
  exit 0
fi

command -v mvn >/dev/null || { log "mvn not found: install maven (apt-get install maven)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$cache/cassandra"

# 1. The official binary tarball, where the release published it to Maven Central.
if mvn -q -B dependency:copy -Dartifact="org.apache.cassandra:apache-cassandra:${version}:tar.gz:bin" \
     -DoutputDirectory="$work" >"$work/official.log" 2>&1; then
  log "using the official binary tarball from Maven Central"
  mv "$work/apache-cassandra-${version}-bin.tar.gz" "$archive"
else
  log "no binary tarball published for ${version}; assembling from cassandra-all and its runtime dependencies"
  cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>org.iact</groupId><artifactId>cassandra-assembly</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId><artifactId>cassandra-all</artifactId>
      <version>${version}</version>
    </dependency>
  </dependencies>
</project>
POM
  mkdir -p "$work/$name/lib"
  if ! mvn -q -B -f "$work/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
       -DoutputDirectory="$work/$name/lib" >"$work/assemble.log" 2>&1; then
    tail -20 "$work/assemble.log" >&2
    log "mvn could not fetch cassandra-all ${version}: check that Maven Central is reachable"
    exit 1
  fi
  printf 'Apache Cassandra %s, assembled from Maven Central (org.apache.cassandra:cassandra-all:%s and its runtime dependencies).\n' \
    "$version" "$version" >"$work/$name/ASSEMBLED.txt"
  # Reproducible archive: fixed order, owner and mtime, so the sha256 is stable across re-assembly.
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='@0' -C "$work" -cf - "$name" | gzip -n >"$archive"
fi
(cd "$(dirname "$archive")" && sha256sum "$(basename "$archive")" >"$(basename "$archive").sha256")
log "$(ls "$archive/../" >/dev/null 2>&1; du -h "$archive" | cut -f1) $(cut -d' ' -f1 "$archive.sha256")"
printf '%s\n' "$archive"
