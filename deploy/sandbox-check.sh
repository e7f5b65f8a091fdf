#!/usr/bin/env bash
# Tries the service under a real systemd on a machine that does not run one (a dev VM or
# container with Debian's systemd package installed), without touching that machine: systemd
# 252 runs as PID 1 of fresh pid/mount/net/cgroup/uts/ipc namespaces, in a throwaway root
# whose /etc and /var are copy-on-write overlays (tmpfs), /usr and this checkout read-only.
# In there it runs `scripts/install-service.sh`, then checks:
#   1. the station starts (READY=1: `systemctl start` returns, a STATUS= line is shown);
#   2. kill -9 of the main PID: systemd restarts it;
#   3. the station frozen (SIGSTOP): the watchdog fires ("Failed with result 'watchdog'") and
#      systemd restarts it;
#   4. systemctl stop: a clean stop (Result=success), no restart.
# Then powers that systemd off and removes its cgroup. Needs root, util-linux's unshare and
# nsenter, overlayfs, a cgroup2 mount. Takes a few minutes on 2 cores. Never run by CI.
#   sudo ./deploy/sandbox-check.sh
set -euo pipefail

die() { echo "sandbox-check: $*" >&2; exit 1; }
say() { echo "sandbox-check: $*"; }
[ -z "${CI:-}" ] || die "CI is set: not run by CI"
[ "$(id -u)" -eq 0 ] || die "must run as root"
[ ! -d /run/systemd/system ] || die "this machine runs systemd: install with ./scripts/install-service.sh instead"
[ -x /usr/lib/systemd/systemd ] || die "/usr/lib/systemd/systemd missing (apt-get install systemd)"
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then CGROOT=/sys/fs/cgroup
elif [ -f /sys/fs/cgroup/unified/cgroup.procs ]; then CGROOT=/sys/fs/cgroup/unified
else die "no cgroup2 hierarchy mounted"; fi

APP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
S=$(mktemp -d /tmp/inline-inspector-sandbox.XXXXXX)
CG=$CGROOT/$(basename "$S")
SD=""
cleanup() {
  if [ -n "$SD" ] && kill -0 "$SD" 2>/dev/null; then
    nsenter -t "$SD" -m -p -r -w systemctl poweroff >/dev/null 2>&1 || true
    for _ in $(seq 1 30); do kill -0 "$SD" 2>/dev/null || break; sleep 1; done
    kill -9 "$SD" 2>/dev/null || true
  fi
  sleep 1
  [ -d "$CG" ] && find "$CG" -depth -type d -exec rmdir {} + 2>/dev/null || true
  rm -rf "$S" 2>/dev/null || true
}
trap cleanup EXIT

cat > "$S/pid1.sh" <<'EOF'
#!/bin/bash
# PID 1 of the new namespaces (their mounts are private): build the root, exec systemd
set -euo pipefail
S=$1; APP=$2; R=$S/root
mkdir -p "$R" "$S/ov"
mount -t tmpfs tmpfs "$S/ov"; mount -t tmpfs tmpfs "$R"
mkdir -p "$R"/{usr,etc,var,opt/inline-inspector,tmp,run,proc,sys,dev,home,root,srv,mnt,boot}
for l in bin sbin lib lib64; do [ -L "/$l" ] && ln -s "$(readlink "/$l")" "$R/$l"; done
mount --bind /usr "$R/usr"; mount -o remount,bind,ro "$R/usr"
for d in etc var; do
  mkdir -p "$S/ov/$d/u" "$S/ov/$d/w"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$S/ov/$d/u,workdir=$S/ov/$d/w" "$R/$d"
done
mount --bind "$APP" "$R/opt/inline-inspector"; mount -o remount,bind,ro "$R/opt/inline-inspector"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
mount -t tmpfs -o mode=755 tmpfs "$R/run"
mount -t proc proc "$R/proc"
mount -t tmpfs -o mode=755 tmpfs "$R/dev"
for n in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
  set -- $n; mknod -m 666 "$R/dev/$1" c "$2" "$3"
done
mkdir -p "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$R/dev/pts"; ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"
mount -t sysfs -o ro sysfs "$R/sys"
mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"
exec chroot "$R" /usr/bin/env -i container=inline-inspector-sandbox PATH=/usr/sbin:/usr/bin \
  /usr/lib/systemd/systemd --unit=basic.target --log-target=journal --show-status=no </dev/null
EOF
chmod +x "$S/pid1.sh"

# its own cgroup (the namespaces' root), then the namespaces
mkdir "$CG"
( echo $BASHPID > "$CG/cgroup.procs"
  exec unshare --mount --pid --fork --net --cgroup --uts --ipc --propagation private "$S/pid1.sh" "$S" "$APP_DIR" ) \
  >"$S/pid1.log" 2>&1 &
UNSHARE=$!
for _ in $(seq 1 30); do # unshare's one child: PID 1 inside, systemd once the root is built
  c=$(pgrep -P "$UNSHARE" | head -1 || true)
  if [ -n "$c" ] && [ "$(cat "/proc/$c/comm" 2>/dev/null)" = systemd ]; then SD=$c; break; fi
  sleep 1
done
[ -n "$SD" ] || { cat "$S/pid1.log" >&2; die "systemd did not start"; }
in_sd() { nsenter -t "$SD" -m -p -n -C -u -i -r -w env -i PATH=/usr/sbin:/usr/bin HOME=/root "$@"; }
for _ in $(seq 1 60); do
  st=$(in_sd systemctl is-system-running 2>/dev/null || true)
  case "$st" in running|degraded) break;; esac; sleep 1
done
say "systemd $(in_sd systemctl --version | head -1 | cut -d' ' -f2) is $st (PID $SD here)"

prop() { in_sd systemctl show -p "$1" --value inline-inspector; }
# waits until the service is active with a main PID other than $1
back() {
  local old=$1 t0; t0=$(date +%s)
  for _ in $(seq 1 240); do
    local a m; a=$(prop ActiveState); m=$(prop MainPID)
    if [ "$a" = active ] && [ "$m" != 0 ] && [ "$m" != "$old" ]; then echo "$(( $(date +%s) - t0 ))"; return 0; fi
    sleep 1
  done
  return 1
}
fail=0
check() { if [ "$1" = 0 ]; then say "PASS: $2"; else say "FAIL: $2"; fail=1; fi; }

in_sd /opt/inline-inspector/scripts/install-service.sh | grep -E '^install-service:|Status:' || true
[ "$(prop ActiveState)" = active ]; check $? "installed and started: $(prop StatusText)"

pid=$(prop MainPID); in_sd kill -9 "$pid"
if s=$(back "$pid"); then check 0 "kill -9: back after ${s}s (NRestarts=$(prop NRestarts))"; else check 1 "kill -9: not back"; fi

pid=$(prop MainPID); in_sd kill -STOP "$pid"
if s=$(back "$pid") && in_sd journalctl -o cat _PID=1 | grep -q "inline-inspector.service: Failed with result 'watchdog'"; then
  check 0 "frozen station: the watchdog fired, back after ${s}s (NRestarts=$(prop NRestarts))"
else check 1 "frozen station: no watchdog restart"; fi

in_sd systemctl stop inline-inspector
[ "$(prop ActiveState)" = inactive ] && [ "$(prop Result)" = success ]; check $? "systemctl stop: clean (Result=$(prop Result))"

exit $fail
