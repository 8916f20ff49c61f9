#!/usr/bin/env bash
# Pipeline costs: cold, warm (no-op) and one-param-change `dvc repro` wall times, the
# study's budget as a ratio to one single run, and the peak memory (max RSS) of one training
# run. Runs in a throwaway copy of the project, so the checkout's dvc.lock, outputs, cache and
# MLflow store are never touched.
#
#   bash benchmarks/pipeline.sh           # everything (a full cold study: many minutes on a CPU)
#   bash benchmarks/pipeline.sh budget    # one single run, then the cold study; their ratio
#   bash benchmarks/pipeline.sh memory    # only the peak-memory measurement (~1 epoch)
#
# One single run = one default 10-epoch training of one seed (train@constant's config, one
# process), timed in the same copy on the same machine just before the study.
#
# Run from the project root. Environment:
#   VENV=path      the virtual environment with python and dvc (default: ./.venv)
#   EPOCHS=N       override train.epochs in the copy's params.yaml (default: as in params.yaml)
#   TARGETS="..."  what each `dvc repro` reproduces (default: the whole pipeline, tune stages
#                  included; e.g. TARGETS=train times only download + train@*)
#   KEEP_TMP=1     keep the temporary copy (its logs are in logs/)
set -euo pipefail
export LC_ALL=C  # a '.' decimal point in $EPOCHREALTIME and printf

mode=${1:-all}
case $mode in all | budget | memory) ;; *) echo "usage: $0 [all|budget|memory]" >&2; exit 2 ;; esac
[ -f dvc.yaml ] && [ -d src/lrsched ] || { echo "run from the project root (no dvc.yaml/src here)" >&2; exit 2; }

root=$PWD
VENV=${VENV:-$root/.venv}
[ -x "$VENV/bin/python" ] && [ -x "$VENV/bin/dvc" ] || { echo "no python/dvc in $VENV (set VENV=...)" >&2; exit 2; }
export PATH="$VENV/bin:$PATH"

tmp=$(mktemp -d)
if [ "${KEEP_TMP:-0}" = 1 ]; then echo "keeping $tmp"; else trap 'rm -rf "$tmp"' EXIT; fi

# Copy the working tree's pipeline and code. .dvc without its cache (and tmp/, where the
# run-cache and locks live): a "cold" repro must not restore outputs from the checkout's cache.
cp -r dvc.yaml params.yaml stages src "$tmp"/
mkdir "$tmp/.dvc"
for f in .dvcignore .dvc/config .dvc/.gitignore; do
  if [ -f "$f" ]; then cp "$f" "$tmp/$f"; fi
done
find "$tmp/src" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +
cd "$tmp"
git init -q
mkdir logs

# The copy's src/ must shadow the editable install, which points at the checkout's src/.
export PYTHONPATH="$tmp/src${PYTHONPATH:+:$PYTHONPATH}"
# No .pyc files: they would appear inside the src/lrsched dependency and make the
# "warm" repro re-hash (or even re-run) stages.
export PYTHONDONTWRITEBYTECODE=1
export MLFLOW_TRACKING_URI="sqlite:///$tmp/mlflow.db" MLFLOW_DISABLE_TELEMETRY=true DVC_NO_ANALYTICS=1

# set_param SECTION LINE_REGEX FIELD VALUE: in params.yaml's top-level SECTION, on the first line
# matching LINE_REGEX, set `FIELD: VALUE` in place (comments and layout kept; DVC sees one change).
set_param() {
  awk -v sect="$1:" -v re="$2" -v field="$3" -v val="$4" '
    /^[^ #]/ { cur = $1 }
    cur == sect && !done && $0 ~ re { done = sub(field ": *[-+0-9.eE]+", field ": " val) }
    { print }
    END { exit !done }' params.yaml >params.yaml.new ||
    { rm -f params.yaml.new; echo "cannot set $1 $3 in params.yaml" >&2; exit 1; }
  mv params.yaml.new params.yaml
}

if [ -n "${EPOCHS:-}" ]; then set_param train '^  epochs:' epochs "$EPOCHS"; fi
read -ra targets <<<"${TARGETS:-}"
epochs=$(python -c 'import yaml; print(yaml.safe_load(open("params.yaml"))["train"]["epochs"])')
n_schedules=$(python -c 'import yaml; print(len(yaml.safe_load(open("params.yaml"))["schedules"]))')

echo "== machine"
echo "cpus:   $(nproc)"
echo "cpu:    $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "torch:  $(python -c 'import torch; print(torch.__version__, f"({torch.get_num_threads()} threads)")')"
echo "dvc:    $(dvc --version)"
echo "study:  $n_schedules schedules x $epochs epochs; dvc repro ${targets[*]:-(everything)} (in $tmp)"

# timed VAR LOG CMD...: run CMD with output to logs/LOG; VAR = its wall seconds (1 decimal).
timed() {
  local var=$1 log=logs/$2
  shift 2
  local t0=$EPOCHREALTIME
  if ! "$@" >"$log" 2>&1; then
    echo "FAILED: $* (last lines of $log):" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  printf -v "$var" '%.1f' "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')"
}

# stages_run LOG: how many stages DVC actually executed in that repro.
stages_run() { grep -c "^Running stage" "logs/$1" || true; }

cold=n/a warm=n/a change=n/a cold_n=- warm_n=- change_n=- single=n/a
if [ "$mode" != memory ]; then
  echo "== one single run: train constant, seed 0, one process, $epochs epochs (tracking off)"
  timed download_s download.log python stages/download.py
  timed single single.log python stages/train.py --schedule constant --seed 0 --workers 1 --no-progress \
    --metrics logs/single/metrics.json --history logs/single/history.json --model logs/single/model.pt \
    --set tracking.enabled=false
  echo "$single s"

  echo "== cold dvc repro (every stage runs)"
  rm -rf data  # the study's own download stage fetches it again
  timed cold repro-cold.log dvc repro "${targets[@]}"
  cold_n=$(stages_run repro-cold.log)
  echo "$cold s, $cold_n stages run"
  echo "study budget: $(awk -v a="$cold" -v b="$single" 'BEGIN { printf "%.1f", a / b }') single runs"
  if [ -f reports/budget.json ]; then
    echo "== compute by kind (reports/budget.json: run-equivalents = image-epochs / 600,000), wall $cold s"
    python - <<'PY'
import json
for kind, value in json.load(open("reports/budget.json"))["run_equivalents"].items():
    print(f"{kind:<28} {value:8.1f}")
PY
  fi
fi
if [ "$mode" = all ]; then
  echo "== warm dvc repro (nothing changed: every stage should be skipped)"
  timed warm repro-warm.log dvc repro "${targets[@]}"
  warm_n=$(stages_run repro-warm.log)
  echo "$warm s, $warm_n stages run"

  echo "== dvc repro after schedules.cosine.base_lr -> 0.25 (only the stages that use it should rerun)"
  set_param schedules '^  cosine:' base_lr 0.25
  timed change repro-change.log dvc repro "${targets[@]}"
  change_n=$(stages_run repro-change.log)
  echo "$change s, $change_n stages run: $(grep '^Running stage' logs/repro-change.log | tr -d "'" | cut -d' ' -f3 | tr -d : | paste -sd' ')"
else
  # no repro: fetch the data directly (a copy from /usr/share/datasets when installed)
  timed download_s download.log python stages/download.py
fi

maxrss=n/a
if [ "$mode" != budget ]; then
echo "== peak memory of one training run (train@constant, 1 epoch)"
if [ ! -x /usr/bin/time ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing GNU time (apt-get install time)"
  apt-get install -y -qq time >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
fi
if [ -x /usr/bin/time ]; then
  timed train_s train-memory.log /usr/bin/time -v python stages/train.py --schedule constant --epochs 1
  kb=$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' logs/train-memory.log)
  maxrss=$(awk -v kb="$kb" 'BEGIN { printf "%.0f MiB", kb / 1024 }')
  echo "max RSS $maxrss ($kb kB), $train_s s wall"
else
  echo "skipped: GNU time (/usr/bin/time) missing; install it with: sudo apt-get install time" >&2
fi
fi

echo "== summary ($(nproc) CPUs, $n_schedules schedules x $epochs epochs)"
printf '%-36s %12s %8s\n' measurement value stages
seconds() { if [ "$1" = n/a ]; then echo n/a; else echo "$1 s"; fi; }
printf '%-36s %12s %8s\n' "one single run (1 seed, 10 epochs)" "$(seconds "$single")" "1"
printf '%-36s %12s %8s\n' "cold dvc repro" "$(seconds "$cold")" "$cold_n"
if [ "$single" != n/a ] && [ "$cold" != n/a ]; then
  printf '%-36s %12s %8s\n' "cold repro / single run" "$(awk -v a="$cold" -v b="$single" 'BEGIN { printf "%.1f", a / b }')" "-"
fi
printf '%-36s %12s %8s\n' "warm no-op dvc repro" "$(seconds "$warm")" "$warm_n"
printf '%-36s %12s %8s\n' "repro after cosine.base_lr change" "$(seconds "$change")" "$change_n"
printf '%-36s %12s %8s\n' "max RSS, train constant 1 epoch" "$maxrss" "-"
