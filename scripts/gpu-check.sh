#!/usr/bin/env bash
# scripts/gpu-check.sh: try the GPU execution providers on this machine and benchmark each one that loads.
#
# For a machine with an NVIDIA GPU and no network (../shared/NOTES.md, "Running the appliance's benchmark
# on a GPU machine"): a checkout with node_modules, the model package and test-images already there.
# For each provider (default webgpu, cuda, tensorrt, then cpu as the same machine's baseline):
#   1. probe: start a model runner with that provider alone (no fallback) and say whether it loaded, and why not;
#      for tensorrt this builds the engine into the cache (var/trt-engines, keyed by model sha256, GPU and
#      TensorRT version: inspector/inference/trt-engine-cache.ts) and starts a second runner that must reuse it;
#   2. benchmark it: with GStreamer, the whole line (npm run bench: PLC simulator, replay camera, station);
#      without GStreamer, the model-runner benchmark on frames from memory (scripts/bench-runner.ts), and the
#      summary says which one ran.
# Writes <out>/probe-<provider>.json, <out>/bench-<provider>.json or <out>/runner-<provider>.json, and
# <out>/summary.json; prints a summary table. CI never runs this on a GPU: test/gpu-check.test.ts runs
# --dry-run on a CPU machine.
set -uo pipefail

usage() {
  cat <<'EOF'
usage: scripts/gpu-check.sh [options]

  --out DIR            where the JSON files go (default: gpu-check-<UTC date>)
  --providers LIST     comma-separated, tried in this order (default: webgpu,cuda,tensorrt,cpu;
                       cpu is the baseline on the same machine)
  --parts N            parts (or frames) per benchmark (default 3000)
  --rate R             parts per second (default 100)
  --provider-libs DIR  folder holding libonnxruntime_providers_{shared,cuda,tensorrt}.so: linked beside
                       onnxruntime-node's libonnxruntime.so.1 (they must be built for its version)
  --lib-dir DIR        prepend DIR to LD_LIBRARY_PATH (repeatable): CUDA runtime, cuBLAS, cuDNN, TensorRT
  --vulkan-icd FILE    the NVIDIA Vulkan ICD JSON for webgpu (sets VK_DRIVER_FILES)
  --trt-cache DIR      TensorRT engine cache root (default var/trt-engines, the station's default)
  --runner-only        the model-runner benchmark even where GStreamer is there (to compare with a
                       machine that has none)
  --dry-run            check the environment and probe each provider; run no benchmark
  --strict             exit 1 when no GPU provider loaded
  -h, --help           this text

Exit status: 0 done (the summary says what loaded), 1 --strict and no GPU provider loaded,
4 this checkout cannot run (no node, no node_modules), 64 bad usage.
EOF
}

out="gpu-check-$(date -u +%Y%m%dT%H%M%SZ)"
providers="webgpu,cuda,tensorrt,cpu"
parts=3000
rate=100
provider_libs=""
lib_dirs=()
vulkan_icd=""
trt_cache="var/trt-engines"
dry_run=0
strict=0
runner_only=0

need_value() { if [[ $# -lt 2 || -z "$2" ]]; then echo "gpu-check: $1 needs a value" >&2; usage >&2; exit 64; fi; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) need_value "$@"; out="$2"; shift 2 ;;
    --providers) need_value "$@"; providers="$2"; shift 2 ;;
    --parts) need_value "$@"; parts="$2"; shift 2 ;;
    --rate) need_value "$@"; rate="$2"; shift 2 ;;
    --provider-libs) need_value "$@"; provider_libs="$2"; shift 2 ;;
    --lib-dir) need_value "$@"; lib_dirs+=("$2"); shift 2 ;;
    --vulkan-icd) need_value "$@"; vulkan_icd="$2"; shift 2 ;;
    --trt-cache) need_value "$@"; trt_cache="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --runner-only) runner_only=1; shift ;;
    --strict) strict=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu-check: unknown option '$1'" >&2; usage >&2; exit 64 ;;
  esac
done
if ! [[ "$parts" =~ ^[1-9][0-9]*$ ]]; then echo "gpu-check: --parts must be a positive integer" >&2; exit 64; fi
if ! [[ "$rate" =~ ^[0-9]+([.][0-9]+)?$ ]]; then echo "gpu-check: --rate must be a number" >&2; exit 64; fi
IFS=',' read -r -a provider_list <<< "$providers"
for p in "${provider_list[@]}"; do
  case "$p" in webgpu|cuda|tensorrt|cpu) ;; *) echo "gpu-check: unknown provider '$p' (webgpu, cuda, tensorrt, cpu)" >&2; exit 64 ;; esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 4
if ! command -v node >/dev/null 2>&1; then echo "gpu-check: no node on PATH (NOTES.md: bring this machine's node binary)" >&2; exit 4; fi
tsx="$root/node_modules/.bin/tsx"
if [[ ! -x "$tsx" ]]; then echo "gpu-check: $tsx missing: node_modules is not installed in this checkout" >&2; exit 4; fi
mkdir -p "$out" || exit 4

say() { printf '%s\n' "$*"; }
section() { printf '\n== %s\n' "$*"; }

# ---------------------------------------------------------------- environment
section "machine"
say "node $(node --version)  checkout $root"
ort_dir="$root/node_modules/onnxruntime-node"
ort_version="$(node -p "require('$ort_dir/package.json').version" 2>/dev/null || echo unknown)"
ort_bin="$ort_dir/bin/napi-v6/linux/x64"
say "onnxruntime-node $ort_version ($ort_bin)"
gpu_name=""
if command -v nvidia-smi >/dev/null 2>&1; then
  gpu_name="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1)"
  say "GPU: ${gpu_name:-nvidia-smi found but it reports no GPU}"
else
  say "GPU: none (no nvidia-smi on PATH): cuda and tensorrt cannot load here"
fi

# the CUDA libraries of a PyTorch install (cuBLAS, cuDNN, cudart) when nothing else provides them
for py in python3 /usr/bin/python3; do
  command -v "$py" >/dev/null 2>&1 || continue
  nv_root="$("$py" -c 'import nvidia, sys; print(list(nvidia.__path__)[0])' 2>/dev/null)" || continue
  [[ -n "$nv_root" && -d "$nv_root" ]] || continue
  for d in "$nv_root"/*/lib; do [[ -d "$d" ]] && lib_dirs+=("$d"); done
  say "CUDA libraries of the Python 'nvidia' packages: $nv_root/*/lib (added to LD_LIBRARY_PATH)"
  break
done
for d in "${lib_dirs[@]+"${lib_dirs[@]}"}"; do LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; done
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"
if [[ -n "$vulkan_icd" ]]; then export VK_DRIVER_FILES="$vulkan_icd"; say "VK_DRIVER_FILES=$vulkan_icd"; fi

if [[ -n "$provider_libs" ]]; then
  if [[ ! -d "$provider_libs" ]]; then echo "gpu-check: --provider-libs $provider_libs is not a folder" >&2; exit 64; fi
  for lib in "$provider_libs"/libonnxruntime_providers_*.so; do
    [[ -e "$lib" ]] || continue
    ln -sf "$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")" "$ort_bin/" && say "linked $(basename "$lib") beside libonnxruntime.so.1"
  done
  LD_LIBRARY_PATH="$provider_libs:$LD_LIBRARY_PATH"
fi

# where a library would be found: LD_LIBRARY_PATH, then the linker cache
find_lib() {
  local pattern="$1" d f
  IFS=':' read -r -a dirs <<< "$LD_LIBRARY_PATH"
  for d in "${dirs[@]+"${dirs[@]}"}" "$ort_bin"; do
    [[ -n "$d" ]] || continue
    for f in "$d"/$pattern; do [[ -e "$f" ]] && { printf '%s' "$f"; return 0; }; done
  done
  f="$(ldconfig -p 2>/dev/null | awk -v p="$pattern" '{ n = $1; gsub(/\*/, ".*", p); if (n ~ "^" p "$") { print $NF; exit } }')"
  [[ -n "$f" ]] && { printf '%s' "$f"; return 0; }
  return 1
}
section "libraries"
declare -A lib_found=()
for spec in "providers_shared:libonnxruntime_providers_shared.so" "providers_cuda:libonnxruntime_providers_cuda.so" \
            "providers_tensorrt:libonnxruntime_providers_tensorrt.so" "cudart:libcudart.so.*" "cublas:libcublas.so.*" \
            "cudnn:libcudnn.so.*" "nvinfer (TensorRT):libnvinfer.so.*" "vulkan loader:libvulkan.so.1"; do
  name="${spec%%:*}"; pattern="${spec#*:}"
  if path="$(find_lib "$pattern")"; then lib_found[$name]="$path"; say "  $name: $path"; else lib_found[$name]=""; say "  $name: NOT FOUND ($pattern)"; fi
done
say "  (the provider libraries must be built for onnxruntime $ort_version; NOTES.md's 1.29.0 set pairs with onnxruntime-node 1.29.0)"

gstreamer=0
if command -v gst-inspect-1.0 >/dev/null 2>&1 && gst-inspect-1.0 appsrc >/dev/null 2>&1 \
   && node -e "require('gstreamer-superficial')" >/dev/null 2>&1; then
  gstreamer=1; say "GStreamer: yes"
fi
if [[ $runner_only -eq 1 ]]; then
  say "--runner-only: each provider is benchmarked by the model runner on frames from memory (scripts/bench-runner.ts):"
  say "           inference worker + decision only, no camera, no capture hand-over, no PLC"
elif [[ $gstreamer -eq 1 ]]; then
  say "           the whole line is benchmarked (npm run bench)"
else
  say "GStreamer: NO: each provider is benchmarked by the model runner on frames from memory (scripts/bench-runner.ts):"
  say "           inference worker + decision only, no camera, no capture hand-over, no PLC"
fi
if [[ ! -d test-images/test/parts ]]; then say "test-images/test/parts missing: run 'npm run fixtures' (or bring them): no benchmark can run"; fi

# what is missing for a provider, from the library checks above (printed when it does not load)
hints() {
  local h=()
  case "$1" in
    cuda|tensorrt)
      [[ -z "$gpu_name" ]] && h+=("no NVIDIA GPU/driver (nvidia-smi)")
      [[ -z "${lib_found[providers_shared]}" || -z "${lib_found[providers_$1]}" ]] \
        && h+=("libonnxruntime_providers_{shared,$1}.so not found: give their folder with --provider-libs")
      [[ -z "${lib_found[cudart]}" || -z "${lib_found[cublas]}" || -z "${lib_found[cudnn]}" ]] \
        && h+=("CUDA runtime, cuBLAS or cuDNN not found: --lib-dir (e.g. PyTorch's nvidia/*/lib)")
      [[ "$1" == "tensorrt" && -z "${lib_found[nvinfer (TensorRT)]}" ]] && h+=("TensorRT's libnvinfer.so not found: --lib-dir")
      ;;
    webgpu)
      [[ -z "${lib_found[vulkan loader]}" ]] && h+=("no Vulkan loader (libvulkan.so.1: Debian's libvulkan1, unpacked with dpkg -x, on --lib-dir)")
      [[ -z "${VK_DRIVER_FILES:-}" ]] && h+=("VK_DRIVER_FILES unset: --vulkan-icd <the NVIDIA ICD json the driver installs>")
      ;;
  esac
  local x
  for x in "${h[@]+"${h[@]}"}"; do say "    hint: $x"; done
}

# ---------------------------------------------------------------- per provider
# a field of a JSON file ('' when absent)
json_field() { node -e "try { const v = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8'))[process.argv[2]]; process.stdout.write(v === undefined || v === null ? '' : String(v)); } catch { }" "$1" "$2"; }

summary_rows=()
gpu_loaded=0
for p in "${provider_list[@]}"; do
  section "provider $p"
  probe="$out/probe-$p.json"
  "$tsx" scripts/bench-runner.ts --provider "$p" --probe --trt-cache "$trt_cache" --json "$probe" >"$out/probe-$p.log" 2>&1
  loaded="$(json_field "$probe" loaded)"
  reason="$(json_field "$probe" reason)"
  if [[ "$loaded" != "true" ]]; then
    [[ -s "$probe" ]] || reason="the probe wrote no report: see $out/probe-$p.log ($(tail -n 1 "$out/probe-$p.log" 2>/dev/null))"
    say "$p: NOT LOADED: $reason"
    hints "$p"
    summary_rows+=("$p|no|${reason//|/\/}|-")
    continue
  fi
  [[ "$p" != "cpu" ]] && gpu_loaded=$((gpu_loaded + 1))
  say "$p: loaded (start-up $(json_field "$probe" startup_ms) ms)"
  [[ "$p" == "tensorrt" ]] && say "tensorrt engine cache: $(node -e "const r = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8')).trt_engine; console.log(JSON.stringify(r))" "$probe")"
  if [[ $dry_run -eq 1 ]]; then summary_rows+=("$p|yes|-|dry run: no benchmark"); continue; fi
  if [[ $gstreamer -eq 1 && $runner_only -eq 0 ]]; then
    file="$out/bench-$p.json"
    UV_THREADPOOL_SIZE=16 "$tsx" scripts/bench.ts --providers "$p" --parts "$parts" --rate "$rate" --json "$file" >"$out/bench-$p.log" 2>&1
    rc=$?; mode="line (npm run bench)"
  else
    file="$out/runner-$p.json"
    "$tsx" scripts/bench-runner.ts --provider "$p" --frames "$parts" --rate "$rate" --trt-cache "$trt_cache" --json "$file" >"$out/runner-$p.log" 2>&1
    rc=$?; mode="model runner, frames from memory ($([[ $gstreamer -eq 0 ]] && echo 'no GStreamer here' || echo '--runner-only'))"
  fi
  if [[ $rc -eq 0 && -s "$file" ]]; then
    say "$p: benchmark done: $file ($mode)"
    grep -v '^{"level"' "$out/bench-$p.log" 2>/dev/null | sed -n '/^latency/,/^targets/p'
    summary_rows+=("$p|yes|-|$file ($mode)")
  else
    say "$p: benchmark FAILED (exit $rc): see ${file%.json}.log"
    summary_rows+=("$p|yes|benchmark failed (exit $rc)|${file%.json}.log")
  fi
done

# ---------------------------------------------------------------- summary
section "summary ($out)"
printf '%-9s %-7s %s\n' provider loaded "why not / benchmark"
rows_json=""
for row in "${summary_rows[@]}"; do
  IFS='|' read -r p ok why file <<< "$row"
  if [[ "$ok" == "yes" ]]; then printf '%-9s %-7s %s\n' "$p" "$ok" "$file"; else printf '%-9s %-7s %s\n' "$p" "$ok" "$why"; fi
  rows_json+="$(node -e "process.stdout.write(JSON.stringify({ provider: process.argv[1], loaded: process.argv[2] === 'yes', reason: process.argv[3] === '-' ? null : process.argv[3], benchmark: process.argv[4] === '-' ? null : process.argv[4] }))" "$p" "$ok" "$why" "$file"),"
done
node -e "require('fs').writeFileSync(process.argv[1], JSON.stringify({ date: new Date().toISOString(), gpu: process.argv[2] || null, onnxruntime_node: process.argv[3], gstreamer: process.argv[4] === '1', dry_run: process.argv[5] === '1', providers: JSON.parse('[' + process.argv[6].replace(/,\$/, '') + ']') }, null, 2) + '\n')" \
  "$out/summary.json" "$gpu_name" "$ort_version" "$gstreamer" "$dry_run" "$rows_json"
say "written: $out/summary.json"
if [[ $strict -eq 1 && $gpu_loaded -eq 0 ]]; then echo "gpu-check: no GPU provider loaded (--strict)" >&2; exit 1; fi
exit 0
