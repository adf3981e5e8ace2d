#!/usr/bin/env bash
# The ablations the paper leaves open, on the small channel model at equal training time:
# mismatched pairs per real image k in {0, 1, 3, 9}, and the tightness clamp (at k = 9): off
# (runs k*), on the batch mean ("clamp", loss.tight_clamp = "batch") or per sample
# ("clamp_per_sample", loss.tight_clamp = "per_sample").
# Each run goes through scripts/train_and_eval.sh; the tables go to results/ablations.md
# (scripts/ablation_tables.py).
#
#   scripts/ablations.sh MINUTES_PER_RUN [N_PER_CLASS] [REAL_LIMIT] [CONFIG] [--set key=value ...]
#
# CONFIG defaults to configs/small_channel.toml; further --set overrides apply to every run
# (for example a different batch size or learning rate for short CPU runs).
# Environment: CIGN_THREADS, CIGN_EVAL_MAX_IMAGES, CIGN_BIN_DIR and CIGN_COMMIT as in
# scripts/train_and_eval.sh;
# CIGN_ABLATIONS: which runs (default "k0 k1 k3 k9 clamp clamp_per_sample").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
usage="usage: scripts/ablations.sh MINUTES_PER_RUN [N_PER_CLASS] [REAL_LIMIT] [CONFIG] [--set key=value ...]"
minutes="${1:?$usage}"
n_per_class="${2:-1000}"
real_limit="${3:-0}"
config="${4:-configs/small_channel.toml}"
shift $(( $# < 4 ? $# : 4 ))
extra=("$@")
bin="${CIGN_BIN_DIR:-target/release}"
[ -n "${CIGN_BIN_DIR:-}" ] || cargo build --release -q -p cign-train --bins -p cign-metrics
[ -f "$($bin/cign-classifier path --dataset mnist)" ] || $bin/cign-classifier train --dataset mnist
for which in ${CIGN_ABLATIONS:-k0 k1 k3 k9 clamp clamp_per_sample}; do
  case "$which" in
    k[0-9]) sets=(--set data.mismatch_per_real="${which#k}" --set loss.tight_clamp=off) ;;
    clamp) sets=(--set data.mismatch_per_real=9 --set loss.tight_clamp=batch) ;;
    clamp_per_sample) sets=(--set data.mismatch_per_real=9 --set loss.tight_clamp=per_sample) ;;
    *) echo "ablations: unknown run $which (k0..k9, clamp or clamp_per_sample)" >&2; exit 2 ;;
  esac
  CIGN_COMMAND="scripts/ablations.sh $minutes $n_per_class $real_limit $config ${extra[*]} (run $which)" \
    scripts/train_and_eval.sh "ablation_$which" "$config" "$minutes" "$n_per_class" "$real_limit" \
      "${extra[@]}" "${sets[@]}"
done
python3 scripts/ablation_tables.py > results/ablations.md.part && mv results/ablations.md.part results/ablations.md
echo "wrote results/ablations.md" >&2
