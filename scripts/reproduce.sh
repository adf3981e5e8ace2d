#!/usr/bin/env bash
# Trains the four CIGN presets (the paper's large_channel and small_filter, and small_channel and
# large_filter at sizes of our choice), the IGN baseline (the IGN network, configs/ign_baseline.toml),
# the label-free ablation of the CIGN network (configs/cign_no_labels.toml) and the
# Fashion-MNIST model with a
# per-run time budget, evaluates each (scripts/train_and_eval.sh) and writes the table in
# results/README.md (scripts/results_table.py). Runs are short on a CPU: the table says so.
#
#   scripts/reproduce.sh MINUTES_PER_RUN [N_PER_CLASS] [REAL_LIMIT] [MODELS...]
#
# MINUTES_PER_RUN  training time budget of each run (train.time_budget_minutes)
# N_PER_CLASS      generated images per class for the metrics (default 1000, the paper's size)
# REAL_LIMIT       test images used as the reference (default 0 = all 10,000)
# MODELS           config names (default: large_channel small_filter small_channel large_filter
#                  ign_baseline cign_no_labels fashion_small_channel)
# Environment: CIGN_THREADS, CIGN_EVAL_MAX_IMAGES, CIGN_BIN_DIR and CIGN_COMMIT as in
# scripts/train_and_eval.sh; CIGN_CLASSIFIER_ARGS: extra options of `cign-classifier train` when
# a classifier is missing (for example "--epochs 1 --train-limit 20000" on a CPU).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
minutes="${1:?usage: scripts/reproduce.sh MINUTES_PER_RUN [N_PER_CLASS] [REAL_LIMIT] [MODELS...]}"
n_per_class="${2:-1000}"
real_limit="${3:-0}"
shift $(( $# < 3 ? $# : 3 ))
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(large_channel small_filter small_channel large_filter ign_baseline cign_no_labels fashion_small_channel)

bin="${CIGN_BIN_DIR:-target/release}"
[ -n "${CIGN_BIN_DIR:-}" ] || cargo build --release -q -p cign-train --bins -p cign-metrics
# The conditional-accuracy classifiers (cached in $CIGN_WEIGHTS_DIR or ~/.cache/cign/weights after the first time).
[ -f "$($bin/cign-classifier path --dataset mnist)" ] || $bin/cign-classifier train --dataset mnist
for model in "${models[@]}"; do
  if grep -q 'fashion' "configs/$model.toml" && [ ! -f "$($bin/cign-classifier path --dataset fashion-mnist)" ]; then
    # shellcheck disable=SC2086
    $bin/cign-classifier train --dataset fashion-mnist ${CIGN_CLASSIFIER_ARGS:-}
  fi
  CIGN_COMMAND="scripts/reproduce.sh $minutes $n_per_class $real_limit $model" \
    scripts/train_and_eval.sh "$model" "configs/$model.toml" "$minutes" "$n_per_class" "$real_limit"
done
python3 scripts/results_table.py > results/README.md.part && mv results/README.md.part results/README.md
echo "wrote results/README.md" >&2
