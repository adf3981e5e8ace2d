#!/usr/bin/env bash
# Trains one configuration for a wall-clock budget, evaluates it with cign-eval, draws its
# sample grid and records everything in results/runs/NAME.{json,md,train.log} and
# results/NAME.{png,loss.png}. Used by scripts/reproduce.sh and scripts/ablations.sh.
#
#   scripts/train_and_eval.sh NAME CONFIG MINUTES N_PER_CLASS REAL_LIMIT [--set key=value ...]
#
# NAME         name of the result (results/runs/NAME.json)
# CONFIG       a file under configs/
# MINUTES      training budget (train.time_budget_minutes)
# N_PER_CLASS  generated images per class for the metrics
# REAL_LIMIT   test images used as the reference (0 = all 10,000)
# --set ...    further config overrides, passed to cign-train
# Environment: CIGN_THREADS (torch threads of training and evaluation; default: all cores),
#              CIGN_EVAL_MAX_IMAGES (validation images per validation; default 1000),
#              CIGN_COMMAND (the command recorded in the JSON; default this script's own line),
#              CIGN_BIN_DIR (where cign-train, cign-eval and cign-sample are; default target/release),
#              CIGN_COMMIT (the commit those binaries were built from; default HEAD).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
usage="usage: scripts/train_and_eval.sh NAME CONFIG MINUTES N_PER_CLASS REAL_LIMIT [--set key=value ...]"
name="${1:?$usage}"; config="${2:?$usage}"; minutes="${3:?$usage}"; npc="${4:?$usage}"; limit="${5:?$usage}"
shift 5
overrides=("$@")
[ -f "$config" ] || { echo "train_and_eval: no config file $config" >&2; exit 2; }
threads="${CIGN_THREADS:-0}"
eval_max="${CIGN_EVAL_MAX_IMAGES:-1000}"
command="${CIGN_COMMAND:-scripts/train_and_eval.sh $name $config $minutes $npc $limit ${overrides[*]}}"
# The thread count is part of the command a reader would rerun.
[ "$threads" = 0 ] || [[ "$command" == *CIGN_THREADS* ]] || command="CIGN_THREADS=$threads $command"
bin="${CIGN_BIN_DIR:-target/release}"
for b in cign-train cign-eval cign-sample; do
  [ -x "$bin/$b" ] || { echo "train_and_eval: $bin/$b missing: run cargo build --release -p cign-train --bins, or set CIGN_BIN_DIR" >&2; exit 2; }
done
[ "$threads" != 0 ] && export OMP_NUM_THREADS="$threads"
mkdir -p results/runs
rm -rf "runs/results/$name"
if [ -n "${CIGN_COMMIT:-}" ]; then
  commit="$CIGN_COMMIT"; dirty=""
else
  commit=$(git rev-parse --short HEAD)
  dirty=$(git status --porcelain --untracked-files=no | grep -q . && echo "+changes" || true)
fi

echo "== $name: training $config for $minutes min" >&2
start=$(date +%s)
$bin/cign-train "$config" --set train.time_budget_minutes="$minutes" \
    --set train.threads="$threads" --set train.eval_max_images="$eval_max" \
    --set output.dir="runs/results/$name" "${overrides[@]}" > "results/runs/$name.train.log" 2>&1 \
  || { echo "train_and_eval: training $name failed; see results/runs/$name.train.log" >&2; tail -5 "results/runs/$name.train.log" >&2; exit 1; }
train_s=$(( $(date +%s) - start ))
run=$(ls -td runs/results/"$name"/*/ | head -1)
run="${run%/}"

echo "== $name: evaluating $run" >&2
start=$(date +%s)
limit_args=()
[ "$limit" != 0 ] && limit_args=(--real-limit "$limit")
$bin/cign-eval --run "$run" --n-per-class "$npc" "${limit_args[@]}" \
    --json "results/runs/$name.json.part" > "results/runs/$name.md"
eval_s=$(( $(date +%s) - start ))
$bin/cign-sample --run "$run" --label all --n 10 --seed 1 --out "results/$name.png" >/dev/null
cp "$run/loss.png" "results/$name.loss.png" 2>/dev/null || true
python3 - "$name" "$run" "$minutes" "$train_s" "$eval_s" "$commit$dirty" "$command" "$threads" <<'PY'
import json, os, platform, sys
name, run, minutes, train_s, eval_s, commit, command, threads = sys.argv[1:]
d = json.load(open(f"results/runs/{name}.json.part"))
rows = [json.loads(l) for l in open(f"{run}/metrics.jsonl") if l.strip()]
d["training"] = {
    "run": run, "config": open(f"{run}/config.toml").read() if os.path.exists(f"{run}/config.toml") else None,
    "time_budget_minutes": float(minutes), "wall_seconds": int(train_s), "eval_wall_seconds": int(eval_s),
    "steps": max((r["step"] for r in rows), default=0), "epoch": max((r["epoch"] for r in rows), default=0),
    "commit": commit, "command": command, "threads": int(threads) or os.cpu_count(),
    "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores",
}
json.dump(d, open(f"results/runs/{name}.json", "w"), indent=1)
os.remove(f"results/runs/{name}.json.part")
PY
echo "== $name: done (train ${train_s}s, eval ${eval_s}s)" >&2
