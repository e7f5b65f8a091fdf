#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine with Node 20 for inline-inspector, idempotently:
# Debian packages (GStreamer, Aravis, OpenCV, PyTorch, Chromium), npm dependencies, test fixtures.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-tools aravis-tools aravis-tools-cli libaravis-dev
  libopencv-dev                       # @u4/opencv4nodejs builds against Debian's OpenCV 4.6
  python3-torch python3-onnx          # the reference trainer (models/training), run by /usr/bin/python3
  chromium                            # the browser the UI tests drive (playwright-core)
  patch                               # applies scripts/patches/ to a dependency (see below)
  mosquitto                           # the MQTT broker the Sparkplug B tests start on a loopback port (and the demo with --mqtt)
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: Debian packages present"
fi

# npm: onnxruntime-node's postinstall fetches GPU providers from an unreachable feed; skip it.
# @u4/opencv4nodejs would git-clone and build OpenCV; build the binding against Debian's instead.
export ONNXRUNTIME_NODE_INSTALL=skip OPENCV4NODEJS_DISABLE_AUTOBUILD=1 JOBS=max
stamp=node_modules/.inspector-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "setup: npm dependencies up to date"
else
  echo "setup: installing npm dependencies (native addons build from source: a few minutes)"
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi

# gstreamer-superficial keeps its JS constructors in process-wide statics: with the addon loaded in
# several worker threads (a respawned capture worker, stations side by side in one test process), a
# findChild() after the last loader exited segfaulted the process. Patched to one per thread, rebuilt.
gst=node_modules/gstreamer-superficial
if ! grep -q "thread_local" "$gst/GObjectWrap.h"; then
  echo "setup: patching gstreamer-superficial (scripts/patches/gstreamer-superficial-thread-local.patch) and rebuilding it"
  patch -d "$gst" -p1 --forward --quiet < scripts/patches/gstreamer-superficial-thread-local.patch
  npm rebuild gstreamer-superficial --no-audit --no-fund
else
  echo "setup: gstreamer-superficial patched"
fi

# Test fixtures are generated, deterministic, and never committed. The same script
# builds the QA UI (scripts/build-ui.ts → ui/dist, gitignored) after npm ci.
npx tsx scripts/ensure-fixtures.ts
