#!/usr/bin/env bash
# Installs the station as the systemd service `inline-inspector`, idempotently:
#   - the system user `inspector` (group inspector, member of video for v4l2 cameras),
#     home and working directory /var/lib/inline-inspector;
#   - /etc/inline-inspector/station.json from deploy/station.example.json, only if absent
#     (an existing config is never touched);
#   - the default model package copied into the station's registry
#     (/var/lib/inline-inspector/models/default/1.0.0), only if absent;
#   - deploy/journald/inline-inspector.conf as /etc/systemd/journald.conf.d/inline-inspector.conf
#     (journal size, retention, rate limit; journald restarted only when it changed);
#   - deploy/systemd/inline-inspector.service copied to /etc/systemd/system/ with this
#     checkout's path and node's path filled in; daemon-reload; enable --now.
# Run again after pulling a new version: an unchanged unit is left alone, a changed one
# is installed and the running station restarted.
#   sudo ./scripts/install-service.sh              install / update
#   sudo ./scripts/install-service.sh --uninstall  stop, disable, remove the unit and the journald drop-in
#                                                  (keeps user, config, data, the journal)
# Needs a machine booted with systemd, as root. Never run by the tests or CI.
set -euo pipefail

SERVICE=inline-inspector
SVC_USER=inspector
STATE_DIR=/var/lib/inline-inspector
CONF_DIR=/etc/inline-inspector
CONFIG=$CONF_DIR/station.json
UNIT_DST=/etc/systemd/system/$SERVICE.service
JOURNALD_DST=/etc/systemd/journald.conf.d/$SERVICE.conf
# the paths written in the shipped unit and example config, replaced at install time
TEMPLATE_APP_DIR=/opt/inline-inspector
TEMPLATE_NODE=/usr/bin/node

APP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
UNIT_SRC=$APP_DIR/deploy/systemd/$SERVICE.service
EXAMPLE_CONFIG=$APP_DIR/deploy/station.example.json
JOURNALD_SRC=$APP_DIR/deploy/journald/$SERVICE.conf

say() { echo "install-service: $*"; }
die() { echo "install-service: $*" >&2; exit 1; }
# journald reads its configuration only when it starts; the services' log streams survive its restart
restart_journald() { systemctl restart systemd-journald || say "warning: could not restart systemd-journald: $1 applies at its next start"; }

# ---- refuse what this script must not touch
[ -z "${CI:-}" ] || die "CI is set: this script installs a system service and is never run by CI"
[ "$(id -u)" -eq 0 ] || die "must run as root: sudo $0"
[ -d /run/systemd/system ] || die "this machine was not booted with systemd (a container?): nothing to install into"
command -v systemctl >/dev/null || die "systemctl not found"

if [ "${1:-}" = "--uninstall" ]; then
  if [ -f "$UNIT_DST" ]; then
    systemctl disable --now "$SERVICE" || true
    rm -f "$UNIT_DST"
    systemctl daemon-reload
    systemctl reset-failed "$SERVICE" 2>/dev/null || true
    say "removed $UNIT_DST; kept user $SVC_USER, $CONF_DIR and $STATE_DIR"
  else
    say "$UNIT_DST is not installed: nothing to do"
  fi
  if [ -f "$JOURNALD_DST" ]; then
    rm -f "$JOURNALD_DST"
    restart_journald "the removal of $JOURNALD_DST"
    say "removed $JOURNALD_DST (journald's defaults again)"
  fi
  exit 0
fi
[ $# -eq 0 ] || die "unknown argument: $1 (usage: $0 [--uninstall])"

# ---- what the service runs: node 20.19+ (or 22+), a set-up checkout, python3 for the notify helper
NODE_BIN=${NODE_BIN:-$(command -v node || true)}
[ -n "$NODE_BIN" ] || die "node not found on root's PATH: set NODE_BIN=/path/to/node"
NODE_BIN=$(readlink -f "$NODE_BIN")
"$NODE_BIN" -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit((a===20&&b>=19)||a>=22?0:1)' \
  || die "$NODE_BIN is node $("$NODE_BIN" --version): 20.19+ or 22+ needed"
[ -f "$APP_DIR/node_modules/.inspector-lock.sha256" ] || die "$APP_DIR is not set up: run ./scripts/setup.sh first"
[ -x /usr/bin/python3 ] || die "/usr/bin/python3 missing: the station's systemd notifications go through it (apt-get install python3)"
[ -f "$UNIT_SRC" ] && [ -f "$EXAMPLE_CONFIG" ] && [ -f "$JOURNALD_SRC" ] || die "$UNIT_SRC, $EXAMPLE_CONFIG or $JOURNALD_SRC missing"

# ---- the user (system account, no login, home in the state directory)
getent group video >/dev/null || groupadd --system video
getent group "$SVC_USER" >/dev/null || groupadd --system "$SVC_USER"
if ! id -u "$SVC_USER" >/dev/null 2>&1; then
  useradd --system --gid "$SVC_USER" --groups video --home-dir "$STATE_DIR" --no-create-home \
    --shell /usr/sbin/nologin --comment "inline-inspector station" "$SVC_USER"
  say "created user $SVC_USER"
else
  id -nG "$SVC_USER" | tr ' ' '\n' | grep -qx video || usermod -aG video "$SVC_USER"
fi

# the service user must be able to read the checkout (a checkout under a private home cannot be)
runuser -u "$SVC_USER" -- test -r "$APP_DIR/bin/inspector.js" -a -x "$APP_DIR/node_modules" \
  || die "user $SVC_USER cannot read $APP_DIR: put the checkout where it can (e.g. $TEMPLATE_APP_DIR, root-owned, world-readable)"

# ---- state: working directory, the registry with the default model
install -d -o "$SVC_USER" -g "$SVC_USER" -m 0750 "$STATE_DIR" "$STATE_DIR/var" "$STATE_DIR/models"
if [ ! -d "$STATE_DIR/models/default/1.0.0" ]; then
  install -d -o "$SVC_USER" -g "$SVC_USER" -m 0750 "$STATE_DIR/models/default"
  cp -r "$APP_DIR/models/default/1.0.0" "$STATE_DIR/models/default/1.0.0"
  chown -R "$SVC_USER:$SVC_USER" "$STATE_DIR/models/default/1.0.0"
  say "copied the default model into the registry: $STATE_DIR/models/default/1.0.0"
fi

# ---- config: written once, never overwritten (it is the operator's from then on)
install -d -o root -g "$SVC_USER" -m 0750 "$CONF_DIR"
if [ ! -f "$CONFIG" ]; then
  tmp=$(mktemp)
  sed "s#$TEMPLATE_APP_DIR#$APP_DIR#g" "$EXAMPLE_CONFIG" > "$tmp"
  install -o root -g "$SVC_USER" -m 0640 "$tmp" "$CONFIG"
  rm -f "$tmp"
  say "created $CONFIG from deploy/station.example.json: edit the camera and the PLC endpoint for this line"
else
  say "kept $CONFIG"
fi

# ---- the journal: size, age and rate limits (a drop-in, replaced only when it changed)
install -d -o root -g root -m 0755 "$(dirname "$JOURNALD_DST")"
if ! cmp -s "$JOURNALD_SRC" "$JOURNALD_DST"; then
  install -o root -g root -m 0644 "$JOURNALD_SRC" "$JOURNALD_DST"
  restart_journald "$JOURNALD_DST"
  say "installed $JOURNALD_DST (journal: 2 GiB, 3 months, persistent)"
fi

# ---- the unit
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
sed -e "s#$TEMPLATE_APP_DIR#$APP_DIR#g" -e "s#^ExecStart=$TEMPLATE_NODE #ExecStart=$NODE_BIN #" "$UNIT_SRC" > "$tmp"
changed=0
if ! cmp -s "$tmp" "$UNIT_DST"; then
  install -o root -g root -m 0644 "$tmp" "$UNIT_DST"
  changed=1
  say "installed $UNIT_DST"
fi
systemd-analyze verify "$UNIT_DST" || say "warning: systemd-analyze verify complained (see above)"
systemctl daemon-reload

# start (or restart a running one whose unit changed); a Type=notify start returns once the
# station sent READY=1, or fails after TimeoutStartSec
systemctl enable "$SERVICE" >/dev/null
if [ "$changed" = 1 ] && systemctl is-active --quiet "$SERVICE"; then
  action=restart
else
  action=start
fi
if ! systemctl "$action" "$SERVICE"; then
  journalctl -u "$SERVICE" -n 40 --no-pager || true
  die "$SERVICE did not start: see the log above (journalctl -u $SERVICE)"
fi
systemctl --no-pager --lines=0 status "$SERVICE" || true
say "$SERVICE is enabled and running; log: journalctl -u $SERVICE -f"
