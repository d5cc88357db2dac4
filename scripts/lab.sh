#!/usr/bin/env bash
# Local lab hosts: Debian 12 containers running systemd, on Docker Engine from Debian's docker.io.
#
#   scripts/lab.sh deps     install docker.io and debootstrap when missing
#   scripts/lab.sh browser  install Debian's chromium, chromium-driver, certutil and hey when missing (web tests, bench)
#   scripts/lab.sh engine   start dockerd when it is not running (this VM has no systemd)
#   scripts/lab.sh image    build local/bookworm-systemd:latest from the Debian mirror (cached by recipe hash)
#   scripts/lab.sh up       create the lab hosts of inventory/lab on the private network, install the SSH key
#   scripts/lab.sh down     remove the lab hosts (and their network) and nothing else
#   scripts/lab.sh status   list the lab hosts
#   scripts/lab.sh deploy   run playbooks/site.yml on the lab unless this checkout is already deployed there
#
# The hosts and their addresses come from inventory/lab/hosts.yml (ansible_host), so the inventory is the
# single source of truth. See docs in README.md ("Lab hosts") for the quirks this handles.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
state=$here/.lab
image=local/bookworm-systemd:latest
network=iact-lab
subnet=172.30.80.0/24
runtime_wrapper=/usr/local/sbin/runc-nosysres
dockerd_log=/var/log/iact-dockerd.log
dockerd_pid=/run/iact-dockerd.pid

log() { printf '%s\n' "lab: $*" >&2; }
die() { printf '%s\n' "lab: error: $*" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive

cmd_deps() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v ssh >/dev/null || missing+=(openssh-client)
  command -v mvn >/dev/null || missing+=(maven)
  command -v age-keygen >/dev/null || missing+=(age)  # the lab's backup key pair (scripts/lab-secrets.sh)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "installing ${missing[*]}"
  apt-get update -q >/dev/null || log "apt-get update reported errors (an unreachable extra source?); continuing"
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# The web layer's browser tests drive Debian's chromium through Debian's chromedriver (one source package, so
# their versions match); Selenium's manager stays offline (SE_OFFLINE), so nothing is downloaded at run time.
# certutil (libnss3-tools) puts the lab CA into a throw-away NSS database the browser trusts; hey (Go, from
# Debian) is bench/web's load generator.
cmd_browser() {
  local missing=() p
  for p in chromium chromium-driver libnss3-tools hey; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "installing ${missing[*]}"
  apt-get update -q >/dev/null || log "apt-get update reported errors (an unreachable extra source?); continuing"
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# CAP_SYS_RESOURCE is bit 24 of the bounding set. Without it, runc cannot start privileged containers.
missing_sys_resource() {
  local bnd
  bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
  (( (0x$bnd >> 24 & 1) == 0 ))
}

install_runtime_wrapper() {
  cat >"$runtime_wrapper.tmp" <<'WRAP'
#!/usr/bin/env python3
"""runc wrapper installed by iact-ops scripts/lab.sh: this VM's root lacks CAP_SYS_RESOURCE, so drop it
from the OCI spec (create/run: bundle config.json; exec: --process file) before calling the real runc."""
import json, os, sys

CAP = "CAP_SYS_RESOURCE"

def strip(path, key=None):
    with open(path) as f:
        spec = json.load(f)
    caps = (spec.get("process", {}) if key is None else spec).get("capabilities") or {}
    for kind in list(caps):
        caps[kind] = [c for c in caps[kind] if c != CAP]
    with open(path, "w") as f:
        json.dump(spec, f)

args = sys.argv[1:]
try:
    if "create" in args or "run" in args:
        bundle = args[args.index("--bundle") + 1] if "--bundle" in args else "."
        strip(os.path.join(bundle, "config.json"))
    if "exec" in args and "--process" in args:
        strip(args[args.index("--process") + 1], key="process")
except (OSError, ValueError, IndexError):
    pass
os.execv("/usr/bin/runc", ["runc"] + args)
WRAP
  chmod 0755 "$runtime_wrapper.tmp"
  mv "$runtime_wrapper.tmp" "$runtime_wrapper"
}

cmd_engine() {
  if docker info >/dev/null 2>&1; then return 0; fi
  command -v dockerd >/dev/null || cmd_deps
  local args=(--pidfile "$dockerd_pid")
  if missing_sys_resource; then
    log "CAP_SYS_RESOURCE is missing here: using the runc wrapper runtime"
    install_runtime_wrapper
    args+=(--add-runtime "nosysres=$runtime_wrapper" --default-runtime nosysres)
  fi
  log "starting dockerd (log: $dockerd_log)"
  # Without the caller's other descriptors: started under `flock FILE make ...`, dockerd would otherwise keep
  # the lock for as long as it runs (it outlives the command).
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec ${fd}>&-"; fi
    done
    exec setsid dockerd "${args[@]}" >>"$dockerd_log" 2>&1 </dev/null
  ) &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  tail -20 "$dockerd_log" >&2
  die "dockerd did not answer within 30 s; see $dockerd_log"
}

# The recipe hash labels the image: editing this script's image recipe rebuilds it, nothing else does.
recipe_hash() { sed -n '/^# IMAGE RECIPE START/,/^# IMAGE RECIPE END/p' "$0" | sha256sum | cut -c1-16; }

debian_mirror() {
  local m
  m=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
      | grep -oE 'https?://[^ ]+' | head -1)
  printf '%s\n' "${m:-http://deb.debian.org/debian}"
}

# IMAGE RECIPE START
build_rootfs() {
  local rootfs=$1 mirror=$2
  debootstrap --variant=minbase \
    --include=python3,python3-apt,systemd,systemd-sysv,dbus,openssh-server,sudo,iproute2,ca-certificates \
    bookworm "$rootfs" "$mirror" >/dev/null
  # Only the Debian sources: the host may list extra repositories the containers cannot use.
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian*}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  for unit in getty.target console-getty.service getty@.service serial-getty@.service; do
    ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
  done
  chroot "$rootfs" systemctl set-default multi-user.target >/dev/null 2>&1
  chroot "$rootfs" systemctl enable ssh >/dev/null 2>&1
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/etc/ssh/ssh_host_*
  # Host keys are made per container at first boot.
  mkdir -p "$rootfs/etc/systemd/system/ssh.service.d"
  printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
    >"$rootfs/etc/systemd/system/ssh.service.d/hostkeys.conf"
  # Ansible's apt judges cache age by this folder's mtime: backdate it so the first update_cache runs.
  touch -d @0 "$rootfs/var/lib/apt/lists"
  : >"$rootfs/etc/machine-id"
}
# IMAGE RECIPE END

cmd_image() {
  cmd_engine
  local want have
  want=$(recipe_hash)
  have=$(docker image inspect -f '{{ index .Config.Labels "org.iact.recipe" }}' "$image" 2>/dev/null || true)
  [[ $want == "$have" ]] && return 0
  command -v debootstrap >/dev/null || cmd_deps
  local rootfs mirror
  rootfs=$(mktemp -d /var/tmp/iact-rootfs.XXXXXX)
  mirror=$(debian_mirror)
  log "building $image from $mirror (about a minute)"
  build_rootfs "$rootfs" "$mirror"
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV container=docker' \
    --change 'CMD ["/lib/systemd/systemd"]' \
    --change "LABEL org.iact.recipe=$want" - "$image" >/dev/null
  rm -rf "$rootfs"
}

# Lab hosts: "name ip" pairs from inventory/lab/hosts.yml.
lab_hosts() {
  python3 - "$here/inventory/lab/hosts.yml" <<'PY'
import re, sys
name = None
for line in open(sys.argv[1]):
    m = re.match(r"^\s+([a-z][a-z0-9-]*):\s*$", line)
    if m:
        name = m.group(1)
    m = re.match(r"^\s+ansible_host:\s*([0-9.]+)\s*$", line)
    if m and name:
        print(name, m.group(1))
        name = None
PY
}

ssh_key() {
  mkdir -p "$state"
  chmod 0700 "$state"
  [[ -f $state/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C iact-lab -f "$state/id_ed25519"
}

cmd_up() {
  cmd_image
  ssh_key
  docker network inspect "$network" >/dev/null 2>&1 || docker network create --subnet "$subnet" "$network" >/dev/null
  local name ip created=0
  while read -r name ip; do
    [[ -n $name ]] || continue
    local ctr=iact-$name
    if [[ $(docker inspect -f '{{ .State.Running }}' "$ctr" 2>/dev/null) == true ]]; then
      :
    elif docker inspect "$ctr" >/dev/null 2>&1; then
      docker start "$ctr" >/dev/null
    else
      log "creating $name ($ip)"
      docker run -d --name "$ctr" --hostname "$name" --network "$network" --ip "$ip" \
        --privileged --cgroupns private --tmpfs /run --tmpfs /tmp \
        --stop-signal SIGRTMIN+3 --label org.iact.lab=1 "$image" /lib/systemd/systemd >/dev/null
      created=1
    fi
    docker exec -i "$ctr" bash -c 'install -d -m 0700 /root/.ssh && cat > /root/.ssh/authorized_keys.new &&
      chmod 0600 /root/.ssh/authorized_keys.new && mv /root/.ssh/authorized_keys.new /root/.ssh/authorized_keys' \
      <"$state/id_ed25519.pub"
  done < <(lab_hosts)
  # Wait for sshd on every host (fresh host keys are generated at first boot).
  while read -r name ip; do
    for _ in $(seq 1 60); do
      ssh-keyscan -T 2 "$ip" >/dev/null 2>&1 && break
      sleep 0.5
    done
  done < <(lab_hosts)
  if [[ $created == 1 ]]; then log "lab hosts are up"; fi
}

cmd_down() {
  local name ip
  while read -r name ip; do
    if docker rm -f "iact-$name" >/dev/null 2>&1; then log "removed $name"; fi
  done < <(lab_hosts)
  docker network rm "$network" >/dev/null 2>&1 || true
  rm -f "$state/known_hosts" "$state/deployed"
}

# What a deployment depends on: the content of everything the playbooks read (the generated secrets
# included), the tool versions and the identity of the lab containers. Equal fingerprint = nothing to do.
deploy_fingerprint() {
  {
    (cd "$here" && find ansible.cfg requirements.txt inventory/lab playbooks roles agents web files templates \
      -type f ! -path '*/__pycache__/*' ! -path '*.egg-info/*' ! -path 'agents/build/*' ! -path 'web/build/*' \
      ! -path 'web/tests/*' -print0 2>/dev/null \
      | sort -z | xargs -0 sha256sum)
    while read -r name _; do docker inspect -f '{{ .Id }}' "iact-$name" 2>/dev/null || echo "missing $name"; done \
      < <(lab_hosts)
  } | sha256sum | cut -c1-32
}

# `make lab` again with nothing changed must be a fast no-op: the playbook only runs when the fingerprint
# differs from the last successful run's (IACT_LAB_FORCE=1 runs it anyway, e.g. to repair drift on a host).
cmd_deploy() {
  local want stamp=$state/deployed
  want=$(deploy_fingerprint)
  if [[ ${IACT_LAB_FORCE:-0} != 1 && -f $stamp && $(cut -d' ' -f1 "$stamp") == "$want" ]]; then
    log "already deployed from this checkout at $(cut -d' ' -f2 "$stamp"): playbook skipped (make lab FORCE=1 runs it)"
    return 0
  fi
  rm -f "$stamp"
  (cd "$here" && PATH=$here/.venv/bin:$PATH ansible-playbook -i inventory/lab playbooks/site.yml)
  echo "$want $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$stamp"
}

cmd_status() {
  docker ps -a --filter label=org.iact.lab=1 --format 'table {{.Names}}\t{{.Status}}'
}

case ${1:-} in
  deps | browser | engine | image | up | down | status | deploy) "cmd_$1" ;;
  *) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac
