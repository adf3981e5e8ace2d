#!/usr/bin/env bash
# Trains one configuration for a wall-clock budget, evaluates it with cign-eval, draws its
# sample grid and records everything in results/runs/NAME.{json,md,train.log} and
# results/NAME.{png,loss.png}. Used by scripts/reproduce.sh and scripts/ablations.sh.
# The .json and .md are written to .part files and moved into place together at the end, so a
# failing step leaves the previous pair untouched (never an empty or half-written one).
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
[ $# -ge 5 ] || { echo "train_and_eval: $usage" >&2; exit 2; }
name="$1"; config="$2"; minutes="$3"; npc="$4"; limit="$5"
shift 5
[[ "$name" =~ ^[A-Za-z0-9_.-]+$ ]] || { echo "train_and_eval: NAME '$name' must be letters, digits, '_', '.' or '-'" >&2; exit 2; }
[[ "$minutes" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "train_and_eval: MINUTES '$minutes' is not a number" >&2; exit 2; }
[[ "$npc" =~ ^[1-9][0-9]*$ ]] || { echo "train_and_eval: N_PER_CLASS '$npc' is not a positive integer" >&2; exit 2; }
[[ "$limit" =~ ^[0-9]+$ ]] || { echo "train_and_eval: REAL_LIMIT '$limit' is not a non-negative integer" >&2; exit 2; }
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
"$bin/cign-train" "$config" --set train.time_budget_minutes="$minutes" \
    --set train.threads="$threads" --set train.eval_max_images="$eval_max" \
    --set output.dir="runs/results/$name" "${overrides[@]}" > "results/runs/$name.train.log" 2>&1 \
  || { echo "train_and_eval: training $name failed; see results/runs/$name.train.log" >&2; tail -5 "results/runs/$name.train.log" >&2; exit 1; }
train_s=$(( $(date +%s) - start ))
run=$(ls -td runs/results/"$name"/*/ 2>/dev/null | head -1 || true)
run="${run%/}"
[ -n "$run" ] || { echo "train_and_eval: training $name left no run directory under runs/results/$name; see results/runs/$name.train.log" >&2; exit 1; }
[ -f "$run/checkpoints/best.safetensors" ] \
  || { echo "train_and_eval: $run has no checkpoints/best.safetensors (no validation ran); see results/runs/$name.train.log" >&2; exit 1; }

# Everything goes to .part files first; on any failure they are removed and the committed
# results/runs/$name.{json,md} stay as they were.
part_eval="results/runs/$name.eval.json.part" part_json="results/runs/$name.json.part"
part_md="results/runs/$name.md.part"
trap 'rm -f "$part_eval" "$part_json" "$part_md"' EXIT
echo "== $name: evaluating $run" >&2
start=$(date +%s)
limit_args=()
[ "$limit" != 0 ] && limit_args=(--real-limit "$limit")
"$bin/cign-eval" --run "$run" --n-per-class "$npc" ${limit_args[@]+"${limit_args[@]}"} \
    --json "$part_eval" > "$part_md" \
  || { echo "train_and_eval: evaluating $run failed (cign-eval's error above); results/runs/$name.{json,md} left as they were" >&2; exit 1; }
eval_s=$(( $(date +%s) - start ))
"$bin/cign-sample" --run "$run" --label all --n 10 --seed 1 --out "results/$name.png" >/dev/null \
  || { echo "train_and_eval: drawing results/$name.png from $run failed; results/runs/$name.{json,md} left as they were" >&2; exit 1; }
cp "$run/loss.png" "results/$name.loss.png" 2>/dev/null || true
python3 - "$name" "$run" "$minutes" "$train_s" "$eval_s" "$commit$dirty" "$command" "$threads" <<'PY'
import json, os, platform, sys
name, run, minutes, train_s, eval_s, commit, command, threads = sys.argv[1:]
d = json.load(open(f"results/runs/{name}.eval.json.part"))
rows = [json.loads(l) for l in open(f"{run}/metrics.jsonl") if l.strip()]
d["training"] = {
    "run": run, "config": open(f"{run}/config.toml").read() if os.path.exists(f"{run}/config.toml") else None,
    "time_budget_minutes": float(minutes), "wall_seconds": int(train_s), "eval_wall_seconds": int(eval_s),
    "steps": max((r["step"] for r in rows), default=0), "epoch": max((r["epoch"] for r in rows), default=0),
    "commit": commit, "command": command, "threads": int(threads) or os.cpu_count(),
    "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores",
}
with open(f"results/runs/{name}.json.part", "w") as fh:
    json.dump(d, fh, indent=1)
PY
mv "$part_md" "results/runs/$name.md"
mv "$part_json" "results/runs/$name.json"
echo "== $name: done (train ${train_s}s, eval ${eval_s}s)" >&2
