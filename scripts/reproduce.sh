#!/usr/bin/env bash
# Trains the paper's four models and the IGN baseline with a per-run time budget, evaluates
# each with cign-eval, and writes results/runs/<model>.{json,md,png} plus the table in
# results/README.md (via scripts/results_table.py). Runs are short on a CPU: the table says so.
#
#   scripts/reproduce.sh MINUTES_PER_RUN [N_PER_CLASS] [REAL_LIMIT] [MODELS...]
#
# MINUTES_PER_RUN  training time budget of each run (train.time_budget_minutes)
# N_PER_CLASS      generated images per class for the metrics (default 1000, the paper's size)
# REAL_LIMIT       test images used as the reference (default 0 = all 10,000)
# MODELS           config names (default: large_channel small_filter small_channel large_filter ign_baseline)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
minutes="${1:?usage: scripts/reproduce.sh MINUTES_PER_RUN [N_PER_CLASS] [REAL_LIMIT] [MODELS...]}"
n_per_class="${2:-1000}"
real_limit="${3:-0}"
shift $(( $# < 3 ? $# : 3 ))
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(large_channel small_filter small_channel large_filter ign_baseline)

cargo build --release -q -p cign-train --bins
cargo build --release -q -p cign-metrics --bins
bin=target/release
mkdir -p results/runs
commit=$(git rev-parse --short HEAD)
# The conditional-accuracy classifier (cached under weights/ after the first time).
[ -f weights/cign-classifier-mnist.safetensors ] || $bin/cign-classifier train --dataset mnist

for model in "${models[@]}"; do
  echo "== $model: training for $minutes min" >&2
  start=$(date +%s)
  $bin/cign-train "configs/$model.toml" --set train.time_budget_minutes="$minutes" \
      --set output.dir=runs/reproduce 2>&1 | tee "results/runs/$model.train.log" | tail -2
  run=$(ls -td runs/reproduce/"$model"-* | head -1)
  train_s=$(( $(date +%s) - start ))
  echo "== $model: evaluating $run" >&2
  limit_args=()
  [ "$real_limit" != 0 ] && limit_args=(--real-limit "$real_limit")
  $bin/cign-eval --run "$run" --n-per-class "$n_per_class" "${limit_args[@]}" \
      --json "results/runs/$model.json" | tee "results/runs/$model.md"
  $bin/cign-sample --run "$run" --label all --n 10 --seed 1 --out "results/$model.png"
  cp "$run/loss.png" "results/$model.loss.png" 2>/dev/null || true
  python3 - "$model" "$run" "$minutes" "$train_s" "$commit" "$n_per_class" "$real_limit" <<'PY'
import json, sys
model, run, minutes, train_s, commit, npc, limit = sys.argv[1:]
path = f"results/runs/{model}.json"
d = json.load(open(path))
last = [json.loads(l) for l in open(f"{run}/metrics.jsonl") if '"train"' in l]
d["training"] = {"run": run, "time_budget_minutes": float(minutes), "wall_seconds": int(train_s),
                 "steps": last[-1]["step"] if last else 0, "epoch": last[-1]["epoch"] if last else 0,
                 "commit": commit,
                 "command": f"scripts/reproduce.sh {minutes} {npc} {limit} {model}"}
json.dump(d, open(path, "w"), indent=1)
PY
done
python3 scripts/results_table.py > results/README.md
echo "wrote results/README.md" >&2
