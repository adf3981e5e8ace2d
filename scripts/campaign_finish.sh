#!/usr/bin/env bash
# The end of a paper-recipe campaign (results/large_channel_campaign.md, "How the campaign
# ends"), in one go, so the final numbers, the shipped weights and their card come from one
# place:
#
#   scripts/campaign_finish.sh RUN_DIR [OUT_ROOT]
#
# 1. the learning curve of every epoch snapshot (cign-curve, 200 images per class, seed 0):
#    OUT_ROOT/results/large_channel_curve.{json,png}
# 2. the full protocol (cign-eval: 1,000 seeded images per class against all test images of
#    the class at 64/192/768, all-class FID at 2048, precision/recall/density/coverage,
#    conditional accuracy) of the best-by-validation checkpoint and of the last epoch
#    snapshot: OUT_ROOT/results/runs/large_channel_campaign{,_epochNNN}.{json,md}
# 3. the best checkpoint's model as OUT_ROOT/models/large_channel_mnist.safetensors
#    (cign-export) and a grid drawn from that file with the README's command
#    (OUT_ROOT/results/large_channel_campaign_final.png)
# 4. the run's records: its run.log and metrics.jsonl as
#    OUT_ROOT/results/runs/large_channel_campaign.{run.log,metrics.jsonl}, its loss figure as
#    OUT_ROOT/results/large_channel_campaign.loss.png, and the segments page rendered from the
#    log (scripts/campaign_segments.py: OUT_ROOT/results/large_channel_segments.md)
# 5. the model card OUT_ROOT/models/README.md (scripts/model_card.py: config, commit, epochs,
#    steps, training and wall time (the segments' total of step 4), machine, SHA-256, the
#    numbers of step 2 next to the paper's)
#
# OUT_ROOT defaults to the repository root. Run it with nothing else on the machine: step 2
# generates 20,000 images and runs Inception on 40,000. It refuses (exit 2, before any work) a
# run whose trainer still holds its lock, a last snapshot before CIGN_MIN_EPOCHS, and binaries
# older than the last commit that changed the binaries' code (crates/ less tests, benches and
# Markdown; rebuild them first).
#
# Environment: CIGN_BIN_DIR (cign-curve, cign-eval, cign-export, cign-sample; default
# target/release), CIGN_DEVICE (default cpu), CIGN_N_PER_CLASS (default 1000), CIGN_DIMS
# (default 64,192,768,2048), CIGN_CURVE_N_PER_CLASS (default 200), CIGN_CURVE_DIMS (default
# 64,192,768), CIGN_EVAL_ARGS (more cign-eval options, e.g. "--real-limit 200" for a test),
# CIGN_SAMPLE_CONFIG (the config given to cign-sample with the weights; default
# configs/large_channel.toml), CIGN_COMMIT (the binaries' commit; default HEAD, with
# "+changes" when the tree has uncommitted changes), CIGN_MIN_EPOCHS (default 25).
set -euo pipefail
fail() { echo "campaign_finish: $*" >&2; exit 2; }
usage="usage: scripts/campaign_finish.sh RUN_DIR [OUT_ROOT]"
[ $# -ge 1 ] && [ $# -le 2 ] || fail "$usage"
# Paths as given, from the caller's directory; then work from the repository root.
abs() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
run="$(abs "${1%/}")"
root="$(abs "${2:-$(dirname "${BASH_SOURCE[0]}")/..}")"
bin="$(abs "${CIGN_BIN_DIR:-$(dirname "${BASH_SOURCE[0]}")/../target/release}")"
sample_config="$(abs "${CIGN_SAMPLE_CONFIG:-$(dirname "${BASH_SOURCE[0]}")/../configs/large_channel.toml}")"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[ -f "$run/config.toml" ] && [ -d "$run/checkpoints" ] \
  || fail "$run is not a run directory (no config.toml or checkpoints/)"
command -v flock >/dev/null || fail "flock (util-linux) is needed to check the run's lock"
if [ -f "$run/lock" ] && ! flock -n "$run/lock" true; then
  pid=$(cat "$run/lock" 2>/dev/null || true)
  fail "$run is still being trained${pid:+ (PID $pid)}: stop it first"
fi
# The binaries must contain the code of this checkout (e.g. cign-eval's checkpoint_state).
# (Modification times through python3, which step 4 needs anyway: `stat` differs between GNU
# and BSD.)
changed=$(git log -1 --format=%ct -- crates ':!crates/*/tests/*' ':!crates/*/benches/*' ':!*.md' \
  2>/dev/null || echo 0)
mtime() { python3 -c 'import os, sys; print(int(os.stat(sys.argv[1]).st_mtime))' "$1"; }
for b in cign-curve cign-eval cign-export cign-sample; do
  [ -x "$bin/$b" ] || fail "$bin/$b missing: cargo build --release -p cign-train --bins, or set CIGN_BIN_DIR"
  [ "$(mtime "$bin/$b")" -ge "$changed" ] \
    || fail "$bin/$b is older than the last commit that changed the code in crates/: cargo build --release -p cign-train --bins"
done
last=$(ls "$run"/checkpoints/epoch-*.safetensors 2>/dev/null | sort | tail -1 || true)
[ -n "$last" ] || fail "$run has no epoch snapshots (train.snapshot_every_epochs)"
last_epoch=$(basename "$last" .safetensors)
last_epoch="${last_epoch#epoch-}"
[ "$((10#$last_epoch))" -ge "${CIGN_MIN_EPOCHS:-25}" ] \
  || fail "the last snapshot is epoch $last_epoch, before ${CIGN_MIN_EPOCHS:-25} (CIGN_MIN_EPOCHS): train on"
device="${CIGN_DEVICE:-cpu}"
npc="${CIGN_N_PER_CLASS:-1000}"
dims="${CIGN_DIMS:-64,192,768,2048}"
# shellcheck disable=SC2206
eval_extra=(${CIGN_EVAL_ARGS:-})
if [ -n "${CIGN_COMMIT:-}" ]; then
  commit="$CIGN_COMMIT"
else
  commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && commit="$commit+changes"
fi
mkdir -p "$root/results/runs" "$root/models"
results="$root/results"
weights="$root/models/large_channel_mnist.safetensors"

echo "== 1/5 the learning curve" >&2
"$bin/cign-curve" --run "$run" --device "$device" --n-per-class "${CIGN_CURVE_N_PER_CLASS:-200}" \
  --dims "${CIGN_CURVE_DIMS:-64,192,768}" --json "$results/large_channel_curve.json" \
  --png "$results/large_channel_curve.png"

echo "== 2/5 the full protocol: best-by-validation checkpoint, then epoch $last_epoch" >&2
# Both evaluations write .part files, moved into place together once both have succeeded: a
# failure leaves the previous results/runs/large_channel_campaign*.{json,md} as they were.
best_base="$results/runs/large_channel_campaign"
last_base="$results/runs/large_channel_campaign_epoch$last_epoch"
parts=("$best_base.json.part" "$best_base.md.part" "$last_base.json.part" "$last_base.md.part"
       "$results/large_channel_segments.md.part")
trap 'rm -f "${parts[@]}"' EXIT
start=$(date +%s)
"$bin/cign-eval" --run "$run" --checkpoint best --n-per-class "$npc" --dims "$dims" \
  --device "$device" ${eval_extra[@]+"${eval_extra[@]}"} --json "$best_base.json.part" \
  > "$best_base.md.part" \
  || { echo "campaign_finish: evaluating the best checkpoint of $run failed (cign-eval's error above)" >&2; exit 1; }
"$bin/cign-eval" --weights "$last" --config "$run/checkpoints/config.toml" --n-per-class "$npc" \
  --dims "$dims" --device "$device" ${eval_extra[@]+"${eval_extra[@]}"} \
  --json "$last_base.json.part" > "$last_base.md.part" \
  || { echo "campaign_finish: evaluating $last failed (cign-eval's error above)" >&2; exit 1; }
eval_s=$(( $(date +%s) - start ))
for f in "$best_base" "$last_base"; do
  mv "$f.md.part" "$f.md"
  mv "$f.json.part" "$f.json"
done

echo "== 3/5 the weights and a grid from them" >&2
"$bin/cign-export" --run "$run" --checkpoint best --out "$weights"
"$bin/cign-sample" --weights "$weights" --config "$sample_config" \
  --label all --n 10 --device "$device" --out "$results/large_channel_campaign_final.png"

echo "== 4/5 the run's records and its segments" >&2
cp "$run/run.log" "$results/runs/large_channel_campaign.run.log"
cp "$run/metrics.jsonl" "$results/runs/large_channel_campaign.metrics.jsonl"
[ ! -f "$run/loss.png" ] || cp "$run/loss.png" "$results/large_channel_campaign.loss.png"
python3 scripts/campaign_segments.py "$root" > "$results/large_channel_segments.md.part"
mv "$results/large_channel_segments.md.part" "$results/large_channel_segments.md"

echo "== 5/5 the model card" >&2
python3 scripts/model_card.py --run "$run" --weights "$weights" \
  --best "$results/runs/large_channel_campaign.json" \
  --last "$results/runs/large_channel_campaign_epoch$last_epoch.json" \
  --commit "$commit" --eval-seconds "$eval_s" --out "$root/models/README.md" \
  --wall "$(python3 scripts/campaign_segments.py --total "$root")"
echo "== done: $root/models/README.md; the campaign's total: $(python3 scripts/campaign_segments.py --total "$root")" >&2
echo "   render results/README.md again: python3 scripts/results_table.py > results/README.md" >&2
