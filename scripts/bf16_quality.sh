#!/usr/bin/env bash
# Quality of bfloat16 mixed precision at equal steps (issue 10): trains CONFIG (default
# configs/cpu_demo.toml) for STEPS steps in fp32 and in bf16 (train.precision), seeds 0 and 1
# of each (the seed-to-seed spread), evaluates every run's best checkpoint with cign-eval
# (per-class FID means at the 64/192/768 taps and the conditional accuracy, N_PER_CLASS
# generated images per class against the first REAL_LIMIT test images), reads its validation
# loss from metrics.jsonl, and writes the table and the verdict to results/bf16_quality.md
# (raw records: results/runs/bf16_quality_*.json, logs beside them).
#
#   scripts/bf16_quality.sh [STEPS] [N_PER_CLASS] [REAL_LIMIT]      (defaults 3000 100 1000)
#
# bf16 holds quality when each of its numbers lies within the range of the two fp32 seeds or
# on its better side; the page says per number which it is. The bf16 runs are evaluated twice:
# sampled in bf16 (as trained; cign-eval takes the run's train.precision) and in fp32 (the
# same checkpoint through --weights with a copy of the config set to fp32).
#
# Cost on the 2-core CPU at one thread: about 22 minutes per 3000-step run of cpu_demo plus
# about 2 minutes per evaluation: about 1 h 45 min in all.
# Runs finished by an earlier call (their results/runs/*.json at the same STEPS) are kept, so
# the script may be stopped between runs and called again; CIGN_QUALITY_FRESH=1 redoes them.
# Environment: CIGN_THREADS (torch threads per run, default 1), CIGN_BIN_DIR (default
# target/release; build with `cargo build --release -p cign-train --bins -p cign-metrics`),
# CIGN_QUALITY_CONFIG (default configs/cpu_demo.toml), CIGN_EVAL_MAX_IMAGES (validation images,
# default 1000), CIGN_CLASSIFIER_ARGS (options of `cign-classifier train` if the MNIST
# classifier is not cached yet).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fail() { echo "bf16_quality: $*" >&2; exit 2; }
[ $# -le 3 ] || fail "usage: scripts/bf16_quality.sh [STEPS] [N_PER_CLASS] [REAL_LIMIT]"
steps="${1:-3000}"; npc="${2:-100}"; limit="${3:-1000}"
for v in "STEPS=$steps" "N_PER_CLASS=$npc" "REAL_LIMIT=$limit"; do
  [[ "${v#*=}" =~ ^[1-9][0-9]*$ ]] || fail "${v%%=*} '${v#*=}' is not a positive integer"
done
config="${CIGN_QUALITY_CONFIG:-configs/cpu_demo.toml}"
threads="${CIGN_THREADS:-1}"
eval_max="${CIGN_EVAL_MAX_IMAGES:-1000}"
bin="${CIGN_BIN_DIR:-target/release}"
for b in cign-train cign-eval cign-classifier; do
  [ -x "$bin/$b" ] || fail "$bin/$b missing: run cargo build --release -p cign-train --bins -p cign-metrics, or set CIGN_BIN_DIR"
done
[ -f "$config" ] || fail "no config file $config"
# The conditional-accuracy classifier (cached in $CIGN_WEIGHTS_DIR or ~/.cache/cign/weights).
# shellcheck disable=SC2086
[ -f "$("$bin/cign-classifier" path --dataset mnist)" ] \
  || "$bin/cign-classifier" train --dataset mnist ${CIGN_CLASSIFIER_ARGS:-}
export OMP_NUM_THREADS="$threads"
# validate (and keep the best checkpoint) every 500 steps as the config does, and at the end
eval_every=$(( steps < 500 ? steps : 500 ))
commit=$(git rev-parse --short HEAD)
mkdir -p results/runs runs/bf16_quality
# Every record is written to a .part file and moved into place once complete; a failure
# leaves the previous records as they were (and no .part file).
trap 'rm -f results/runs/bf16_quality_*.part results/bf16_quality.md.part' EXIT
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)

for prec in fp32 bf16; do
  for seed in 0 1; do
    name="bf16_quality_${prec}_seed${seed}"
    out="runs/bf16_quality/$name"
    # A run finished by an earlier call of this script (same steps, evaluated) is kept: the
    # script can be stopped between runs and called again.
    if [ -z "${CIGN_QUALITY_FRESH:-}" ] && [ -f "results/runs/$name.train.json" ] \
        && [ -f "results/runs/$name.eval.json" ] \
        && { [ "$prec" = fp32 ] || [ -f "results/runs/$name.eval_fp32.json" ]; } \
        && python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["steps"] != int(sys.argv[2]))' \
             "results/runs/$name.train.json" "$steps"; then
      echo "== $name: done by an earlier call (results/runs/$name.*.json), kept" >&2
      continue
    fi
    rm -rf "$out"
    echo "== $name: training $config for $steps steps" >&2
    t0=$(date +%s)
    "$bin/cign-train" "$config" --set train.max_steps="$steps" --set train.seed="$seed" \
        --set train.precision="$prec" --set train.threads="$threads" \
        --set train.eval_max_images="$eval_max" --set train.time_budget_minutes=0 \
        --set train.eval_every="$eval_every" \
        --set output.dir="$out" > "results/runs/$name.train.log" 2>&1 \
      || { echo "bf16_quality: training $name failed; see results/runs/$name.train.log" >&2; exit 1; }
    train_s=$(( $(date +%s) - t0 ))
    run=$(ls -td "$out"/*/ | head -1); run="${run%/}"
    echo "== $name: evaluating $run" >&2
    [ -f "$run/checkpoints/best.safetensors" ] \
      || { echo "bf16_quality: $run has no checkpoints/best.safetensors (no validation ran); see results/runs/$name.train.log" >&2; exit 1; }
    "$bin/cign-eval" --run "$run" --n-per-class "$npc" --real-limit "$limit" --no-prdc \
        --device cpu --json "results/runs/$name.eval.json.part" > "results/runs/$name.eval.md.part" \
      || { echo "bf16_quality: evaluating $run failed (cign-eval's error above)" >&2; exit 1; }
    mv "results/runs/$name.eval.md.part" "results/runs/$name.eval.md"
    mv "results/runs/$name.eval.json.part" "results/runs/$name.eval.json"
    if [ "$prec" = bf16 ]; then
      # the same checkpoint sampled in fp32: a copy of the config with train.precision = fp32
      sed 's/^precision = "bf16"/precision = "fp32"/' "$run/config.toml" > "$run/config_fp32.toml"
      grep -q '^precision = "fp32"' "$run/config_fp32.toml" \
        || { echo "bf16_quality: $run/config.toml has no precision = \"bf16\" line" >&2; exit 1; }
      "$bin/cign-eval" --weights "$run/checkpoints/best.safetensors" --config "$run/config_fp32.toml" \
          --n-per-class "$npc" --real-limit "$limit" --no-prdc --device cpu \
          --json "results/runs/$name.eval_fp32.json.part" > "results/runs/$name.eval_fp32.md.part" \
        || { echo "bf16_quality: evaluating $run in fp32 failed (cign-eval's error above)" >&2; exit 1; }
      mv "results/runs/$name.eval_fp32.md.part" "results/runs/$name.eval_fp32.md"
      mv "results/runs/$name.eval_fp32.json.part" "results/runs/$name.eval_fp32.json"
    fi
    python3 - "$name" "$run" "$train_s" <<'PY'
import json, sys
name, run, train_s = sys.argv[1:]
rows = [json.loads(l) for l in open(f"{run}/metrics.jsonl") if l.strip()]
val = [r for r in rows if r["kind"] == "validation"]
with open(f"results/runs/{name}.train.json.part", "w") as fh:
    json.dump({"run": run, "train_wall_seconds": int(train_s),
               "steps": max((r["step"] for r in rows), default=0),
               "validation": val}, fh, indent=1)
PY
    mv "results/runs/$name.train.json.part" "results/runs/$name.train.json"
  done
done

python3 - "$steps" "$npc" "$limit" "$config" "$threads" "$commit" "$started" "$bin" <<'PY'
import json, os, sys
steps, npc, limit, config, threads, commit, started, bindir = sys.argv[1:]

def metrics(name, eval_suffix="eval"):
    ev = json.load(open(f"results/runs/{name}.{eval_suffix}.json"))["report"]
    tr = json.load(open(f"results/runs/{name}.train.json"))
    val = tr["validation"]
    m = {
        "val_final": val[-1]["total"] if val else float("nan"),
        "val_best": min(v["total"] for v in val) if val else float("nan"),
    }
    for tap in ev["taps"]:
        m[f"fid{tap['dims']}"] = tap["per_class"]["mean"]
    acc = ev.get("conditional_accuracy")
    if acc is None:
        sys.exit(f"bf16_quality: {name}: cign-eval computed no conditional accuracy (no classifier)")
    m["acc"] = acc["overall"]
    m["train_s"] = tr["train_wall_seconds"]
    return m

cols = [("val_final", "validation loss (last)", -1), ("val_best", "validation loss (best)", -1),
        ("fid64", "per-class FID 64", -1), ("fid192", "per-class FID 192", -1),
        ("fid768", "per-class FID 768", -1), ("acc", "conditional accuracy", +1)]
rows = []
for prec in ("fp32", "bf16"):
    for seed in (0, 1):
        name = f"bf16_quality_{prec}_seed{seed}"
        rows.append((f"{prec} seed {seed}", prec, metrics(name)))
        if prec == "bf16":
            rows.append((f"bf16 seed {seed}, sampled in fp32", "bf16-fp32", metrics(name, "eval_fp32")))
fp = [m for _, p, m in rows if p == "fp32"]
lines = [
    "# bfloat16 mixed precision: quality at equal steps",
    "",
    f"`scripts/bf16_quality.sh {steps} {npc} {limit}` at commit {commit} (binaries: {bindir}), "
    f"last call started {started} (runs kept from earlier calls: see each run's JSON): "
    f"`{config}` for {steps} steps per run, {threads} thread(s), fp32 and bf16 "
    f"(`train.precision`), seeds 0 and 1. Metrics of each run's best checkpoint: per-class FID "
    f"means over the 10 classes ({npc} generated images per class against that class's share "
    f"of the first {limit} test images), conditional accuracy (cign-eval), and the validation "
    "loss of metrics.jsonl (computed in the run's precision).",
    "",
    "| run | " + " | ".join(c[1] for c in cols) + " | training wall s |",
    "|---|" + "---|" * (len(cols) + 1),
]
for label, p, m in rows:
    cells = ["(as above)" if p == "bf16-fp32" and c.startswith("val") else f"{m[c]:.4f}"
             for c, _, _ in cols]
    lines.append(f"| {label} | " + " | ".join(cells) + f" | {m['train_s']} |")
lines += ["", "Training wall seconds are those of a shared 2-core machine (other jobs, such as the "
          "paper-recipe campaign, held the other core, and a run paused for a CI check counts "
          "its pause): they say nothing about bf16's speed, which `results/performance.md` "
          "measures interleaved.", ""]
lines += ["The issue's rule: the fp32 spread (min to max of the two seeds) and where each bf16 "
          "number lies:", ""]
verdict, failed = True, []
for c, title, better in cols:
    lo, hi = min(m[c] for m in fp), max(m[c] for m in fp)
    parts = []
    for label, p, m in rows:
        if not p.startswith("bf16") or (p == "bf16-fp32" and c.startswith("val")):
            continue
        v = m[c]
        if lo <= v <= hi:
            where = "within"
        elif (better > 0 and v > hi) or (better < 0 and v < lo):
            where = "better than both fp32 seeds"
        else:
            where = "WORSE than both fp32 seeds"
            if p == "bf16":
                verdict = False
                failed.append(title)
        parts.append(f"{label}: {v:.4f} ({where})")
    lines.append(f"- {title}: fp32 {lo:.4f} to {hi:.4f}; " + "; ".join(parts))
# paired view: each bf16 run against the fp32 run of the same seed, in units of the
# seed-to-seed difference of fp32
by = {(p, lab.split(",")[0].split()[-1]): m for lab, p, m in rows}
lines += ["", "Paired view: each bf16 run (trained and sampled in bf16) against the fp32 run of the "
          "same seed, as a fraction of the fp32 seed-to-seed difference (positive: bf16 worse):", ""]
paired_ok = True
for c, title, better in cols:
    spread = abs(by[("fp32", "0")][c] - by[("fp32", "1")][c])
    fr = []
    for seed in ("0", "1"):
        worse = (by[("fp32", seed)][c] - by[("bf16", seed)][c]) * better
        fr.append(worse / spread if spread > 0 else (0.0 if worse <= 0 else float("inf")))
    if max(fr) > 0.5:
        paired_ok = False
    lines.append(f"- {title}: seed 0 {fr[0]:+.2f}, seed 1 {fr[1]:+.2f} (fp32 seed-to-seed "
                 f"difference {spread:.4f})")
lines += ["", "**Verdict (the issue's rule): " + (
    "bf16 holds quality at this length: every bf16 number (trained and sampled in bf16) lies "
    "within the fp32 seed spread or on its better side.**" if verdict else
    "bf16 does NOT hold quality at this length: " + ", ".join(dict.fromkeys(failed)) +
    " of at least one bf16 run (trained and sampled in bf16) is worse than both fp32 seeds.**"),
    "", "Paired: " + (
    "every bf16 run is within half the fp32 seed-to-seed difference of its fp32 twin (or better)."
    if paired_ok else
    "at least one bf16 run is worse than its fp32 twin by more than half the fp32 seed-to-seed "
    "difference."),
    "", "**bf16 for the long paper-recipe run: " + (
    "may be used as far as quality goes (both views above hold at this length).**"
    if verdict and paired_ok else "not on this evidence (see above).**"),
    "", "Two seeds give a crude spread; a number just outside it is weak evidence either way. "
    "Quality is only half of the choice: where bf16 steps are slower than fp32, as on this "
    "project's 2-core CPU (`results/performance.md`), the long run stays fp32."]
with open("results/bf16_quality.md.part", "w") as fh:
    fh.write("\n".join(lines) + "\n")
os.replace("results/bf16_quality.md.part", "results/bf16_quality.md")
print("\n".join(lines))
PY
