#!/usr/bin/env bash
# GPU check: does a GPU run repeat bit for bit, how long does one take, is the GPU kept busy?
#
#   bash benchmarks/gpu_check.sh --quick                # a few minutes on a GPU (see below)
#   bash benchmarks/gpu_check.sh                        # the whole default study (dvc repro), with its wall time
#   bash benchmarks/gpu_check.sh --quick --device cpu   # the same check on the CPU (to test this script)
#
# --quick: one schedule (SCHEDULE, default constant) with 3 seeds on the full data, timed, with
# the GPU's utilisation sampled by nvidia-smi meanwhile; then seed 0 trained twice, one process
# each, and the two compared bit for bit (every metric but seconds, and every weight).
# Prints the single-run time, the aggregate throughput (training images/s over all seeds) and
# the GPU utilisation (mean and max; "n/a" without nvidia-smi).
# Without --quick: `dvc repro` of the whole pipeline in a throwaway copy of the project (the
# checkout's dvc.lock, outputs, cache and MLflow store are not touched), with its wall time.
#
# Run from the project root. Environment:
#   VENV=path        virtual environment with python (and dvc for the full study); default ./.venv
#   DATA_ROOT=path   the data root holding FashionMNIST/raw (default: data, as in params.yaml);
#                    the full study copies it in, so its download stage only verifies it
#   SCHEDULE=name    --quick's schedule (default: constant)
#   CHECK_SET="k=v ..."  extra --set overrides for every training, e.g. a smoke test on the CPU:
#                    CHECK_SET="data.limit_train=2048 data.limit_test=512 train.epochs=1"
set -euo pipefail
export LC_ALL=C  # a '.' decimal point in $EPOCHREALTIME and printf

quick=0
device=cuda
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --device) [ $# -ge 2 ] || { echo "--device needs a value (cuda, cuda:1, cpu)" >&2; exit 2; }; device=$2; shift ;;
    --device=*) device=${1#--device=} ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (use --quick and/or --device DEVICE)" >&2; exit 2 ;;
  esac
  shift
done
[ -f dvc.yaml ] && [ -d src/lrsched ] || { echo "run from the project root (no dvc.yaml/src here)" >&2; exit 2; }

root=$PWD
VENV=${VENV:-$root/.venv}
[ -x "$VENV/bin/python" ] || { echo "no python in $VENV (set VENV=...)" >&2; exit 2; }
export PATH="$VENV/bin:$PATH"
export PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's code, whatever is installed
export MLFLOW_DISABLE_TELEMETRY=true DVC_NO_ANALYTICS=1
data_root=${DATA_ROOT:-data}
schedule=${SCHEDULE:-constant}
read -ra extra <<<"${CHECK_SET:-}"
sets=(--set "train.device=$device" --set "data.root=$data_root")
for kv in "${extra[@]}"; do sets+=(--set "$kv"); done

if [ ! -d "$data_root/FashionMNIST/raw" ]; then
  echo "no data in $data_root/FashionMNIST/raw: run python stages/download.py first (or set DATA_ROOT)" >&2
  exit 2
fi
if [[ $device == cuda* ]] && ! python -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'; then
  echo "device $device: CUDA is not available here (use --device cpu to test the script)" >&2
  exit 2
fi

tmp=$(mktemp -d)
sampler=
cleanup() {
  if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# sample_gpu FILE: nvidia-smi's utilisation every 0.5 s into FILE, in the background ($sampler)
sample_gpu() {
  if command -v nvidia-smi >/dev/null && [[ $device == cuda* ]]; then
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 500 >"$1" 2>/dev/null &
    sampler=$!
  fi
}
stop_gpu() {
  if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true; sampler=; fi
}
since() { awk -v now="$EPOCHREALTIME" -v t0="$1" 'BEGIN { printf "%.3f", now - t0 }'; }
gpu_summary() {  # FILE -> "mean X %, max Y %, max memory Z MiB" or n/a
  if [ -s "$1" ]; then
    awk -F', *' '{ s += $1; n++; if ($1 > m) m = $1; if ($2 > mem) mem = $2 }
      END { if (n) printf "mean %.0f %%, max %d %%, max memory %d MiB (%d samples)\n", s / n, m, mem, n; else print "n/a" }' "$1"
  else
    echo "n/a (no nvidia-smi, or not a CUDA device)"
  fi
}

echo "== machine"
python - "$device" <<'EOF'
import sys
import lrsched  # noqa: F401 - the pins, before torch
import torch
from lrsched.core.device import resolve_device
from lrsched.core.pinning import environment

device = resolve_device(sys.argv[1])
torch.zeros(1, device=device)  # starts CUDA, so the environment lists the GPU
env = environment()
print(f"device: {device}")
for key in ("gpu", "cuda", "cudnn", "deterministic_algorithms", "cudnn_deterministic", "cudnn_benchmark",
            "env.CUBLAS_WORKSPACE_CONFIG", "torch", "cpu_capability", "threads", "pinned"):
    if key in env:
        print(f"{key}: {env[key]}")
EOF

if [ "$quick" = 1 ]; then
  train() {  # OUT-PREFIX ARGS...: one train stage, outputs in $tmp
    local out=$tmp/$1; shift
    python stages/train.py --schedule "$schedule" --no-progress --set tracking.enabled=false "${sets[@]}" \
      --metrics "$out.json" --history "$out.history.json" --model "$out.pt" "$@" >"$out.log" 2>&1 ||
      { cat "$out.log" >&2; echo "training failed (log above)" >&2; exit 1; }
  }
  echo "== $schedule, seeds 0 1 2 (train.workers as in params.yaml)"
  sample_gpu "$tmp/gpu.csv"
  t0=$EPOCHREALTIME
  train three --set "train.seeds=[0,1,2]"
  wall3=$(since "$t0")
  stop_gpu
  echo "== seed 0 alone, twice"
  t0=$EPOCHREALTIME
  train once --seed 0 --workers 1
  wall1=$(since "$t0")
  train again --seed 0 --workers 1
  python - "$tmp" "$wall1" "$wall3" "$(gpu_summary "$tmp/gpu.csv")" <<'EOF'
import json
import sys
from pathlib import Path

import torch

tmp, wall1, wall3, gpu = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
three = json.loads((tmp / "three.json").read_text())
seeds = three["per_seed"]
runs = [json.loads((tmp / f"{name}.json").read_text())["per_seed"]["0"] for name in ("once", "again")]
strip = lambda r: {k: v for k, v in r.items() if k != "seconds"}  # noqa: E731
weights = [torch.load(tmp / f"{name}.pt", weights_only=True)[0] for name in ("once", "again")]
same_weights = all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
same = strip(runs[0]) == strip(runs[1]) and same_weights
fit_seconds = runs[0]["seconds"]
print(f"single run (seed 0, one process): {wall1:.1f} s wall, {fit_seconds:.1f} s in fit")
print(f"3 seeds: {wall3:.1f} s wall; per-seed fit seconds {[round(r['seconds'], 1) for r in seeds.values()]}")
print(f"GPU utilisation during the 3 seeds: {gpu}")
print(f"seed 0 twice: {'bit-identical' if same else 'DIFFERENT'} "
      f"(metrics {'same' if strip(runs[0]) == strip(runs[1]) else 'differ'}, "
      f"weights {'same' if same_weights else 'differ'}); test_acc {runs[0].get('test_acc')}")
sys.exit(0 if same else 1)
EOF
  # aggregate throughput: training images of all 3 seeds over the wall time (process start and data loading included)
  python - "$tmp" "$wall3" "${sets[@]}" <<'EOF'
import json
import sys
from pathlib import Path

from lrsched.config import load_config
from lrsched.data import load_split

tmp, wall3 = Path(sys.argv[1]), float(sys.argv[2])
overrides = [sys.argv[i + 1] for i in range(3, len(sys.argv) - 1) if sys.argv[i] == "--set"]
cfg = load_config(Path("params.yaml"), overrides)
n = len(load_split(cfg.data.root, train=True, limit=cfg.data.limit_train))
epochs = len(json.loads((tmp / "three.history.json").read_text()))
print(f"aggregate throughput: {3 * epochs * n / wall3:,.0f} training images/s (3 seeds x {epochs} epochs x {n:,} images / {wall3:.1f} s)")
EOF
  exit 0
fi

command -v dvc >/dev/null || { echo "no dvc in $VENV (the full study runs dvc repro)" >&2; exit 2; }
echo "== the whole default study: dvc repro in a throwaway copy ($tmp)"
cp -r dvc.yaml params.yaml stages src "$tmp"/
mkdir -p "$tmp/.dvc" "$tmp/data"
for f in .dvcignore .dvc/config .dvc/.gitignore; do
  if [ -f "$f" ]; then cp "$f" "$tmp/$f"; fi
done
cp -r "$data_root/FashionMNIST" "$tmp/data/"  # the download stage verifies it instead of fetching
find "$tmp/src" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +
# the copy trains on DEVICE; CHECK_SET's overrides go into its params.yaml as well
python - "$tmp/params.yaml" "$device" "${extra[@]}" <<'EOF'
import sys

import yaml

path, device, overrides = sys.argv[1], sys.argv[2], sys.argv[3:]
params = yaml.safe_load(open(path))
params["train"]["device"] = device
params["data"]["root"] = "data"
for kv in overrides:
    key, value = kv.split("=", 1)
    *parents, leaf = key.split(".")
    node = params
    for p in parents:
        node = node[p]
    node[leaf] = yaml.safe_load(value)
open(path, "w").write(yaml.safe_dump(params, sort_keys=False))
EOF
cd "$tmp"
git init -q
export PYTHONPATH="$tmp/src" PYTHONDONTWRITEBYTECODE=1 MLFLOW_TRACKING_URI="sqlite:///$tmp/mlflow.db"
sample_gpu "$tmp/gpu.csv"
t0=$EPOCHREALTIME
dvc repro >"$tmp/repro.log" 2>&1 || { tail -40 "$tmp/repro.log" >&2; echo "dvc repro failed (log above)" >&2; exit 1; }
wall=$(since "$t0")
stop_gpu
awk -v w="$wall" 'BEGIN { printf "study wall time: %.1f s (%.1f min)\n", w, w / 60 }'
echo "GPU utilisation during the study: $(gpu_summary "$tmp/gpu.csv")"
