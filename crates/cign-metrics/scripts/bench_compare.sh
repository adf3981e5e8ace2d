#!/usr/bin/env bash
# Interleaved CPU throughput comparison of cign-metrics and pytorch-fid 0.3.0 on the same
# 8 MNIST digits (batch of 8), so that both see the same machine load:
#   ROUNDS=3 SECONDS_PER=15 THREADS=0 PYTHON=/work/refvenv-metrics/bin/python \
#     crates/cign-metrics/scripts/bench_compare.sh > bench.jsonl
# Each round runs, in turn: ours at tap 768, pytorch-fid at dims 768, ours at all taps,
# pytorch-fid with all four blocks, ours at the paper's taps (64,192,768), pytorch-fid at
# 64, 192 and 768 separately (what three pytorch-fid runs cost), ours in NCHW at tap 768.
# Needs a release build: cargo build --release -p cign-metrics --example fid_throughput
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
bin="${BIN:-$root/target/release/examples/fid_throughput}"
py="${PYTHON:?set PYTHON to a python with torch 2.11.0 and pytorch-fid 0.3.0}"
rounds="${ROUNDS:-3}"
threads="${THREADS:-0}"
secs="${SECONDS_PER:-15}"
fixtures="$here/../tests/fixtures"
for r in $(seq 1 "$rounds"); do
  "$bin" --taps 768 --seconds "$secs" --threads "$threads"
  "$py" "$here/bench_pytorch_fid.py" --fixtures "$fixtures" --seconds "$secs" --threads "$threads" --configs 768
  "$bin" --taps 64,192,768,2048 --seconds "$secs" --threads "$threads"
  "$py" "$here/bench_pytorch_fid.py" --fixtures "$fixtures" --seconds "$secs" --threads "$threads" --configs all
  "$bin" --taps 64,192,768 --seconds "$secs" --threads "$threads"
  "$py" "$here/bench_pytorch_fid.py" --fixtures "$fixtures" --seconds "$secs" --threads "$threads" --configs 64,192
  "$bin" --taps 768 --layout nchw --seconds "$secs" --threads "$threads"
done
