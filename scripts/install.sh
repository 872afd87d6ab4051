#!/usr/bin/env bash
# Installs spillway as a systemd service on Raspberry Pi OS / Debian.
#
#   sudo scripts/install.sh [--dry-run]
#
# Run it from a built checkout (npm ci && npm run build). It:
#   1. checks Node.js >= 20 at /usr/bin/node (the unit's ExecStart), npm, and
#      the tools better-sqlite3 needs to compile (python3, make, g++; installed
#      with apt-get when missing)
#   2. creates the system user `spillway`, a member of `dialout` (serial ports)
#   3. installs the package in /opt/spillway: dist/{daemon,drivers,config},
#      package.json, package-lock.json, then `npm ci --omit=dev` on this
#      machine (native modules are built for this CPU and this Node), then
#      prunes what the daemon never loads (dist/scripts/prune-modules.js:
#      build leftovers, install-only packages, types, browser bundles; ~50 MB
#      down to ~9 MB); the node_modules of the previous install are reused
#      when the lock file, the pruning, the Node version and the CPU are the same
#   4. creates /etc/spillway/spillway.yaml from config/spillway.example.yaml
#      with dataDir: /var/lib/spillway, unless it exists; checks it as the
#      spillway user with `spillway check-config`
#   5. puts the command `spillway` on PATH: /usr/local/bin/spillway, a
#      two-line wrapper that runs /opt/spillway/dist/daemon/cli.js with
#      /usr/bin/node (the Node the unit uses, whatever PATH says)
#   6. installs systemd/spillway.service, daemon-reload, enable --now; a
#      running service is restarted when the package or the unit changed
#
# Idempotent: a second run changes nothing and restarts nothing. Without a
# running systemd (a chroot building an image) the unit is enabled for the
# next boot and not started.
#
# --dry-run prints every command instead of running it (any user may run it).
set -euo pipefail

readonly PREFIX=/opt/spillway
readonly CONF_DIR=/etc/spillway
readonly CONF_FILE=$CONF_DIR/spillway.yaml
readonly DATA_DIR=/var/lib/spillway
readonly UNIT_FILE=/etc/systemd/system/spillway.service
readonly NODE=/usr/bin/node
readonly USER_NAME=spillway
readonly COMMAND=/usr/local/bin/spillway
readonly MIN_NODE_MAJOR=20
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly SRC

DRY_RUN=0
ERRORS=0

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

# ── output ─────────────────────────────────────────────────────────────────

step() { printf '\n== %s\n' "$*"; }
note() { printf '   %s\n' "$*"; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }

# An error stops a real run; a dry run reports it, goes on, and exits 1 at the end.
fail() {
  printf 'install.sh: error: %s\n' "$*" >&2
  if ((DRY_RUN)); then
    ERRORS=$((ERRORS + 1))
    return 0
  fi
  exit 1
}

# Prints a command, then runs it (not in a dry run).
run() {
  printf '   +'
  printf ' %q' "$@"
  printf '\n'
  ((DRY_RUN)) && return 0
  "$@"
}

# ── checks ─────────────────────────────────────────────────────────────────

check_platform() {
  step "checking the platform"
  if [[ $(id -u) -ne 0 ]]; then
    if ((DRY_RUN)); then note "not root: fine for a dry run; the real run needs sudo"; else fail "run as root: sudo $0"; fi
  fi
  [[ -f /etc/debian_version ]] || warn "not Debian or Raspberry Pi OS: apt-get, useradd and the paths are assumed anyway"
  command -v systemctl >/dev/null || fail "systemctl not found: spillway runs as a systemd service"
  if [[ ! -x $NODE ]]; then
    fail "$NODE not found: the unit runs $NODE. Install Node.js $MIN_NODE_MAJOR+ from NodeSource (deb.nodesource.com: Debian 12 ships Node 18); nvm installs under a home directory the service cannot read"
  else
    local version major
    version=$("$NODE" -p 'process.versions.node')
    major=${version%%.*}
    if ((major < MIN_NODE_MAJOR)); then fail "$NODE is Node.js $version; spillway needs $MIN_NODE_MAJOR or later"; else note "node $version at $NODE"; fi
  fi
  command -v npm >/dev/null || fail "npm not found: it comes with Node.js from NodeSource (or: apt-get install npm)"
  [[ -f $SRC/dist/daemon/cli.js ]] || fail "$SRC/dist/daemon/cli.js not found: build first (npm ci && npm run build)"
  [[ -f $SRC/dist/scripts/prune-modules.js ]] || fail "$SRC/dist/scripts/prune-modules.js not found: build first (npm ci && npm run build)"
  [[ -f $SRC/package-lock.json ]] || fail "$SRC/package-lock.json not found: npm ci needs it"
  [[ -f $SRC/systemd/spillway.service ]] || fail "$SRC/systemd/spillway.service not found"
  [[ -f $SRC/config/spillway.example.yaml ]] || fail "$SRC/config/spillway.example.yaml not found"
}

check_build_tools() {
  step "tools to compile better-sqlite3 (node-gyp, when no prebuilt binary fits)"
  local missing=() tool
  for tool in python3 make g++; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  if ((${#missing[@]} == 0)); then
    note "python3, make and g++ present"
    return
  fi
  note "missing: ${missing[*]}"
  run apt-get update || warn "apt-get update failed; trying the install with the lists there are"
  run apt-get install -y --no-install-recommends python3 make g++ || fail "apt-get could not install python3 make g++"
}

# Warns when MemoryMax= cannot be enforced: Raspberry Pi OS kernels ship with the memory cgroup off.
check_memory_cgroup() {
  local controllers=/sys/fs/cgroup/cgroup.controllers
  if [[ -r $controllers ]] && ! grep -qw memory "$controllers"; then
    warn "the memory cgroup is disabled: MemoryMax= in the unit is not enforced (the Node heap limit still is). To enable it, add 'cgroup_enable=memory' to /boot/firmware/cmdline.txt (/boot/cmdline.txt before bookworm) and reboot"
  fi
}

# ── steps ──────────────────────────────────────────────────────────────────

ensure_user() {
  step "system user $USER_NAME (in dialout)"
  if id -u "$USER_NAME" >/dev/null 2>&1; then
    note "user $USER_NAME exists"
  else
    run useradd --system --user-group --home-dir "$DATA_DIR" --no-create-home --shell /usr/sbin/nologin --comment "spillway telemetry daemon" "$USER_NAME" ||
      fail "could not create the user $USER_NAME"
  fi
  if id -nG "$USER_NAME" 2>/dev/null | grep -qw dialout; then
    note "$USER_NAME is in dialout"
  else
    run usermod --append --groups dialout "$USER_NAME" || fail "could not add $USER_NAME to dialout"
  fi
}

# What the package is: the compiled daemon, the lock file, the Node version.
package_stamp() {
  (
    cd "$SRC"
    find dist/daemon dist/drivers dist/config -type f ! -name '*.test.js' ! -name '*.test.js.map' -print0 | sort -z | xargs -0 sha256sum
    sha256sum package.json package-lock.json
    "$NODE" --version
  ) | sha256sum | cut -d' ' -f1
}

# What node_modules was built for: the lock file, the pruning, the Node version, the CPU.
modules_stamp() {
  { sha256sum <"$SRC/package-lock.json"; sha256sum <"$SRC/dist/scripts/prune-modules.js"; "$NODE" --version; uname -m; } | sha256sum | cut -d' ' -f1
}

PACKAGE_CHANGED=0

install_package() {
  step "package in $PREFIX"
  local stamp stage=$PREFIX.new
  if [[ ! -f $SRC/dist/daemon/cli.js ]]; then
    note "skipped: nothing built"
    return
  fi
  stamp=$(package_stamp)
  if [[ -f $PREFIX/.install-stamp && $(<"$PREFIX/.install-stamp") == "$stamp" ]]; then
    note "$PREFIX is up to date"
    return
  fi
  PACKAGE_CHANGED=1
  run rm -rf "$stage"
  run install -d -m 0755 "$stage"
  # Only what the daemon runs: no tests, no scripts, no sources.
  note "copy dist/{daemon,drivers,config} (without tests), package.json, package-lock.json, README.md"
  if ((!DRY_RUN)); then
    (cd "$SRC" && find dist/daemon dist/drivers dist/config -type f ! -name '*.test.js' ! -name '*.test.js.map' -exec cp --parents -t "$stage" {} +)
  fi
  run cp -t "$stage" "$SRC/package.json" "$SRC/package-lock.json" "$SRC/README.md"

  local modules
  modules=$(modules_stamp)
  if [[ -d $PREFIX/node_modules && -f $PREFIX/.modules-stamp && $(<"$PREFIX/.modules-stamp") == "$modules" ]]; then
    note "same lock file, Node and CPU: reusing $PREFIX/node_modules"
    run cp -a "$PREFIX/node_modules" "$stage/node_modules"
  else
    note "npm ci --omit=dev: better-sqlite3 may compile for a few minutes on a Pi"
    run env --chdir="$stage" npm ci --omit=dev --no-audit --no-fund ||
      fail "npm ci failed in $stage (see above; better-sqlite3 needs python3, make and g++)"
    # After the build: what only the build and the install needed goes (check-config below loads what is left).
    run "$NODE" "$SRC/dist/scripts/prune-modules.js" "$stage" || fail "pruning $stage/node_modules failed"
  fi
  if ((!DRY_RUN)); then
    printf '%s\n' "$modules" >"$stage/.modules-stamp"
    printf '%s\n' "$stamp" >"$stage/.install-stamp"
  fi
  run chown -R root:root "$stage"
  run chmod -R u=rwX,go=rX "$stage"
  # Swap in one rename: a running daemon keeps the files it has open.
  if [[ -e $PREFIX ]]; then
    run rm -rf "$PREFIX.old"
    run mv "$PREFIX" "$PREFIX.old"
  fi
  run mv "$stage" "$PREFIX"
  run rm -rf "$PREFIX.old"
}

ensure_config() {
  step "config $CONF_FILE"
  run install -d -o root -g root -m 0755 "$CONF_DIR"
  if [[ -f $CONF_FILE ]]; then
    note "$CONF_FILE exists: kept as it is"
    local data_dir
    data_dir=$(sed -n 's/^dataDir:[[:space:]]*//p' "$CONF_FILE" | sed 's/[[:space:]]*#.*$//; s/^["'\'']//; s/["'\'']$//')
    if [[ $data_dir != "$DATA_DIR" ]]; then
      fail "$CONF_FILE has dataDir: ${data_dir:-(unset, ./var)}; under the unit it must be $DATA_DIR (the only writable directory)"
    fi
  else
    note "from config/spillway.example.yaml, with dataDir: $DATA_DIR; root:$USER_NAME 0640 (it may hold tokens and passwords)"
    if ((!DRY_RUN)); then
      local tmp
      tmp=$(mktemp)
      sed "s|^dataDir:.*|dataDir: $DATA_DIR|" "$SRC/config/spillway.example.yaml" >"$tmp"
      grep -qx "dataDir: $DATA_DIR" "$tmp" || fail "config/spillway.example.yaml has no top-level dataDir: line to set"
      install -o root -g "$USER_NAME" -m 0640 "$tmp" "$CONF_FILE"
      rm -f "$tmp"
    fi
  fi
  # As the service user: proves it can read the file, and that the native modules load.
  if ! run runuser -u "$USER_NAME" -- "$NODE" "$PREFIX/dist/daemon/cli.js" check-config "$CONF_FILE"; then
    fail "$CONF_FILE is not valid (problems above); fix it, then run install.sh again"
  fi
}

install_command() {
  step "command $COMMAND"
  local want
  want=$(printf '#!/bin/sh\n# Installed by spillway scripts/install.sh: the spillway command, with the Node the unit uses.\nexec %s %s/dist/daemon/cli.js "$@"\n' "$NODE" "$PREFIX")
  if [[ -f $COMMAND && $(<"$COMMAND") == "$want" ]]; then
    note "$COMMAND is up to date"
    return
  fi
  note "a wrapper: exec $NODE $PREFIX/dist/daemon/cli.js \"\$@\""
  if ((!DRY_RUN)); then
    local tmp
    tmp=$(mktemp)
    printf '%s\n' "$want" >"$tmp"
    install -o root -g root -m 0755 "$tmp" "$COMMAND"
    rm -f "$tmp"
  else
    printf '   + install -o root -g root -m 0755 (the wrapper above) %q\n' "$COMMAND"
  fi
}

UNIT_CHANGED=0

install_unit() {
  step "unit $UNIT_FILE"
  if cmp -s "$SRC/systemd/spillway.service" "$UNIT_FILE"; then
    note "$UNIT_FILE is up to date"
  else
    UNIT_CHANGED=1
    run install -o root -g root -m 0644 "$SRC/systemd/spillway.service" "$UNIT_FILE"
  fi
  if command -v systemd-analyze >/dev/null; then
    run systemd-analyze verify "$UNIT_FILE" || warn "systemd-analyze verify reported problems with $UNIT_FILE (above)"
  fi
}

start_service() {
  step "service"
  if [[ ! -d /run/systemd/system ]]; then
    note "systemd is not running here (a chroot?): enabling for the next boot only"
    run systemctl enable spillway.service || fail "systemctl enable failed"
    return
  fi
  local was_active=0
  systemctl is-active --quiet spillway.service && was_active=1
  run systemctl daemon-reload
  run systemctl enable --now spillway.service || fail "spillway did not start: journalctl -u spillway -e"
  if ((was_active && (PACKAGE_CHANGED || UNIT_CHANGED))); then
    run systemctl restart spillway.service || fail "spillway did not restart: journalctl -u spillway -e"
  fi
  if ((!DRY_RUN)); then
    systemctl --no-pager --lines=0 status spillway.service || true # shows the state; the exit code is not ours to judge
  fi
  note "logs: journalctl -u spillway -f    status: systemctl status spillway"
}

main() {
  while (($# > 0)); do
    case $1 in
      --dry-run) DRY_RUN=1 ;;
      -h | --help)
        usage
        return 0
        ;;
      *)
        printf 'install.sh: unknown argument %q\n\n' "$1" >&2
        usage >&2
        return 64
        ;;
    esac
    shift
  done
  ((DRY_RUN)) && printf 'dry run: nothing is changed; commands are printed with +\n'
  check_platform
  check_build_tools
  check_memory_cgroup
  ensure_user
  install_package
  ensure_config
  install_command
  install_unit
  start_service
  if ((ERRORS > 0)); then
    printf '\ndry run: %d error(s) above would stop a real run\n' "$ERRORS" >&2
    return 1
  fi
  printf '\ndone\n'
}

main "$@"
