#!/usr/bin/env bash
# The paper's two headline models in one go on one CUDA GPU: checks that CUDA is seen, times a
# training step of each preset, trains large_channel and small_filter at the paper's recipe
# (configs unchanged: batch 256, lr 1e-4, AdamW betas (0.5, 0.999), weight decay 0.01, k = 9,
# fp32) for 25 epochs each (the authors' best model came at their "epoch 24", counted from 0),
# evaluates each best-by-validation checkpoint at the full protocol, exports its weights, and
# writes everything under OUT_DIR. The conditional-accuracy classifier is trained first (on the
# GPU, a few seconds) unless `cign-classifier path` names a cached one.
#
# Build first: cargo build --release -p cign-train --bins --examples -p cign-metrics
#
#   scripts/gpu_paper_run.sh OUT_DIR [--tiny]
#
# --tiny   the same path on the CPU in a minute or two: the same configs shrunk to tiny widths
#          (latent 8, intermediate 16), 3 steps per model, a small validation and evaluation
#          set (a test of the script, not a result). It never trains the classifier (that would
#          put a poor one in the shared cache): conditional accuracy only if one is cached.
#
# OUT_DIR/
#   env.txt                   cign-train --doctor, nvidia-smi, the commit
#   step_times.jsonl          one line per preset (step_time example, 5 timed steps)
#   runs/<config>-<stamp>/    the run directories (metrics.jsonl, checkpoints, samples)
#   <config>.eval.json/.md    the full-protocol evaluation of the best checkpoint
#   <config>.safetensors      its weights (cign-export), <config>.grid.png a sample grid
#   <config>.train.log        the training log
#   summary.md                one table, with wall times
#
# Environment: CIGN_BIN_DIR (cign-train, cign-eval, cign-sample, cign-export, cign-classifier;
# default target/release), CIGN_STEP_TIME (the step_time example; default $CIGN_BIN_DIR/examples/step_time),
# CIGN_EPOCHS (default 25), CIGN_N_PER_CLASS (default 1000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
usage="usage: scripts/gpu_paper_run.sh OUT_DIR [--tiny]"
out="${1:?$usage}"
tiny=false
[ "${2:-}" = "--tiny" ] && tiny=true
[ $# -le 2 ] || { echo "gpu_paper_run: $usage" >&2; exit 2; }
[ -z "${2:-}" ] || $tiny || { echo "gpu_paper_run: unknown option ${2}; $usage" >&2; exit 2; }

bin="${CIGN_BIN_DIR:-target/release}"
step_time="${CIGN_STEP_TIME:-$bin/examples/step_time}"
for b in "$bin/cign-train" "$bin/cign-eval" "$bin/cign-sample" "$bin/cign-export" "$step_time"; do
  [ -x "$b" ] || { echo "gpu_paper_run: $b missing: cargo build --release -p cign-train --bins --examples -p cign-metrics, or set CIGN_BIN_DIR" >&2; exit 2; }
done
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
  "$bin/cign-train" --doctor
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
} > "$out/env.txt" 2>&1
if ! $tiny && ! grep -q "CUDA available: *true" "$out/env.txt"; then
  echo "gpu_paper_run: libtorch sees no CUDA device (see $out/env.txt); use --tiny on a CPU" >&2
  exit 2
fi

# The classifier is trained on the GPU to keep within the time; its test accuracy is in
# classifier.log. A classifier trained on another device is not bit-identical to the CPU one
# of the committed rows, so compare conditional accuracies across machines with that in mind.
$tiny || [ -x "$bin/cign-classifier" ] \
  || { echo "gpu_paper_run: $bin/cign-classifier missing: cargo build --release -p cign-train --bins --examples -p cign-metrics, or set CIGN_BIN_DIR" >&2; exit 2; }
if ! $tiny && [ ! -f "$("$bin/cign-classifier" path --dataset mnist)" ]; then
  echo "== the conditional-accuracy classifier (MNIST, $device)" >&2
  "$bin/cign-classifier" train --dataset mnist --device "$device" > "$out/classifier.log" 2>&1 \
    || { echo "gpu_paper_run: training the classifier failed; see $out/classifier.log" >&2; exit 1; }
fi

echo "== step times ($device)" >&2
: > "$out/step_times.jsonl"
for cfg in small_channel large_channel small_filter large_filter; do
  "$step_time" "$configs/$cfg.toml" --device "$device" ${time_extra[@]+"${time_extra[@]}"} >> "$out/step_times.jsonl"
done

summary="$out/summary.md"
{
  echo "# Paper-recipe runs ($($tiny && echo 'tiny CPU check, not a result' || echo "$epochs epochs on $device"))"
  echo
  echo "| config | steps | epochs | train wall s | eval wall s | per-class FID64 mean | FID192 | FID768 | all-class FID2048 | conditional accuracy |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
} > "$summary"

for cfg in large_channel small_filter; do
  echo "== $cfg: training $epochs epochs on $device" >&2
  start=$(date +%s)
  "$bin/cign-train" "$configs/$cfg.toml" --set train.epochs="$epochs" --set train.device="\"$device\"" \
      --set output.dir="\"$out/runs\"" ${train_extra[@]+"${train_extra[@]}"} > "$out/$cfg.train.log" 2>&1 \
    || { echo "gpu_paper_run: training $cfg failed; see $out/$cfg.train.log" >&2; tail -3 "$out/$cfg.train.log" >&2; exit 1; }
  train_s=$(( $(date +%s) - start ))
  run=$(ls -td "$out/runs/$cfg"-*/ | head -1)
  run="${run%/}"

  echo "== $cfg: evaluating $run (best checkpoint, $npc images per class)" >&2
  start=$(date +%s)
  "$bin/cign-eval" --run "$run" --checkpoint best --n-per-class "$npc" --device "$device" \
      ${eval_extra[@]+"${eval_extra[@]}"} --json "$out/$cfg.eval.json" > "$out/$cfg.eval.md"
  eval_s=$(( $(date +%s) - start ))
  "$bin/cign-export" --run "$run" --checkpoint best --out "$out/$cfg.safetensors" >&2
  "$bin/cign-sample" --weights "$out/$cfg.safetensors" --config "$run/config.toml" --label all \
      --n 10 --seed 1 --device "$device" --out "$out/$cfg.grid.png" >&2

  python3 - "$out/$cfg.eval.json" "$run/metrics.jsonl" "$cfg" "$train_s" "$eval_s" >> "$summary" <<'EOF'
import json, sys
report_path, metrics_path, cfg, train_s, eval_s = sys.argv[1:]
out = json.load(open(report_path))
r = out["report"]
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
echo "== done: $summary" >&2
cat "$summary"
