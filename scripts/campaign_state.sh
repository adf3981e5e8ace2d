#!/usr/bin/env bash
# Keeps a long run's resumable state inside the repository, the one place that has survived
# every change of the developer machine (the home directory and a second disk have not: the
# campaign lost run 1 at step 3773 and run 2 at step 2988 or later with them).
#
#   scripts/campaign_state.sh save RUN_DIR [STATE_DIR]
#   scripts/campaign_state.sh restore STATE_DIR RUN_ROOT
#
# save: copies what `cign-train --resume` needs and what the sampling and evaluation tools
#   read (checkpoints/last.safetensors, checkpoints/best.safetensors when it exists, without
#   its AdamW moments, which only `last` needs, checkpoints/config.toml, config.toml, run.log,
#   metrics.jsonl) to STATE_DIR (default
#   results/campaign_state/large_channel) and writes STATE_DIR/RUN: the run directory's name
#   and the step of `last` (its meta.step). Epoch snapshots and sample grids are not kept. Each
#   file is written as a .part file and moved into place; unchanged files are left alone (git
#   stores an unchanged checkpoint once). Refuses (exit 2) while a trainer holds the run's
#   lock: stop it first (SIGTERM writes `last`).
# restore: recreates RUN_ROOT/<name from STATE_DIR/RUN>/ from STATE_DIR, so that
#   `cign-train --resume RUN_ROOT/<name>` continues at the saved step (bit-exactly on the CPU
#   at the same thread count on the same kind of CPU); what came after the save is lost.
#   Refuses (exit 2) if that directory exists.
#
# STATE_DIR defaults to the paper-recipe campaign's; give another for any other run. save
# refuses (exit 2) a STATE_DIR that holds another run's state or a later step of this run.
set -euo pipefail

die() {
    echo "campaign_state.sh: $*" >&2
    exit 2
}
usage="usage: scripts/campaign_state.sh save RUN_DIR [STATE_DIR] | restore STATE_DIR RUN_ROOT"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# copy SRC DST: DST replaced only when its bytes differ, through DST.part.
copy() {
    if [[ -f "$2" ]] && cmp -s "$1" "$2"; then
        return
    fi
    cp "$1" "$2.part"
    mv -f "$2.part" "$2"
}

save() {
    local run="$1" state="$2"
    [[ -d "$run" ]] || die "$run: no such run directory"
    for f in checkpoints/last.safetensors checkpoints/config.toml config.toml run.log metrics.jsonl; do
        [[ -f "$run/$f" ]] || die "$run: no $f (is it a cign-train run directory with a checkpoint?)"
    done
    command -v flock >/dev/null || die "flock (util-linux) is needed to check the run's lock"
    if [[ -f "$run/lock" ]] && ! flock -n "$run/lock" true; then
        local pid
        pid=$(cat "$run/lock" 2>/dev/null || true)
        die "$run: a trainer holds its lock${pid:+ (PID $pid)}; stop it first (kill -TERM writes last)"
    fi
    local step
    # The checkpoint's own step (tensor meta.step, an I64 scalar).
    step=$(python3 - "$run/checkpoints/last.safetensors" <<'PY' 2>/dev/null || true
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    begin, end = header["meta.step"]["data_offsets"]
    f.seek(8 + n + begin)
    print(struct.unpack("<q", f.read(end - begin))[0])
PY
)
    [[ -n "$step" ]] || die "$run/checkpoints/last.safetensors: no meta.step (not a cign-train checkpoint?)"
    local name
    name=$(basename "$(cd "$run" && pwd)")
    # One run per state directory, and never an older state over a newer one.
    if [[ -f "$state/RUN" ]]; then
        local saved_name saved_step
        saved_name=$(awk '$1 == "run" {print $2}' "$state/RUN")
        saved_step=$(awk '$1 == "step" {print $2}' "$state/RUN")
        [[ "$saved_name" == "$name" ]] ||
            die "$state holds the state of run $saved_name, not $name; give another STATE_DIR"
        [[ "$step" -ge "$saved_step" ]] ||
            die "$state holds step $saved_step of $name, newer than this directory's step $step; not overwritten"
    fi
    mkdir -p "$state/checkpoints"
    copy "$run/checkpoints/last.safetensors" "$state/checkpoints/last.safetensors"
    copy "$run/checkpoints/config.toml" "$state/checkpoints/config.toml"
    if [[ -f "$run/checkpoints/best.safetensors" ]]; then
        # `best` without its AdamW moments (optim.*: two thirds of the file, which nothing
        # reads from `best`; the tools load model.* and meta.*).
        python3 - "$run/checkpoints/best.safetensors" "$state/checkpoints/.best.safetensors.part" <<'PY' ||
import json, struct, sys
src, dst = sys.argv[1], sys.argv[2]
with open(src, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    base = 8 + n
    out_header, chunks, offset = {}, [], 0
    for key, info in sorted(header.items(), key=lambda kv: kv[0] != "__metadata__"):
        if key == "__metadata__":
            out_header[key] = info
            continue
        if key.startswith("optim."):
            continue
        begin, end = info["data_offsets"]
        f.seek(base + begin)
        chunks.append(f.read(end - begin))
        out_header[key] = dict(info, data_offsets=[offset, offset + end - begin])
        offset += end - begin
text = json.dumps(out_header, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)
with open(dst, "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text)
    for c in chunks:
        f.write(c)
PY
            die "$run/checkpoints/best.safetensors: cannot be read as a safetensors file"
        if [[ -f "$state/checkpoints/best.safetensors" ]] &&
            cmp -s "$state/checkpoints/.best.safetensors.part" "$state/checkpoints/best.safetensors"; then
            rm "$state/checkpoints/.best.safetensors.part"
        else
            mv -f "$state/checkpoints/.best.safetensors.part" "$state/checkpoints/best.safetensors"
        fi
    fi
    for f in config.toml run.log metrics.jsonl; do
        copy "$run/$f" "$state/$f"
    done
    printf 'run %s\nstep %s\n' "$name" "$step" > "$state/RUN.part"
    mv -f "$state/RUN.part" "$state/RUN"
    echo "campaign_state.sh: saved $run (last at step $step) to $state"
}

restore() {
    local state="$1" runs="$2"
    [[ -f "$state/RUN" ]] || die "$state: no RUN file (not a state saved by campaign_state.sh save)"
    local name
    name=$(awk '$1 == "run" {print $2}' "$state/RUN")
    [[ -n "$name" && "$name" != */* ]] || die "$state/RUN: no run name"
    local dest="$runs/$name"
    [[ -e "$dest" ]] && die "$dest exists; resume it, or move it away to restore the saved state"
    mkdir -p "$runs"
    local tmp
    tmp=$(mktemp -d "$runs/.$name.XXXXXX")
    chmod 755 "$tmp"
    mkdir "$tmp/checkpoints" "$tmp/samples"
    cp "$state/checkpoints/"*.safetensors "$state/checkpoints/config.toml" "$tmp/checkpoints/"
    cp "$state/config.toml" "$state/run.log" "$state/metrics.jsonl" "$tmp/"
    mv "$tmp" "$dest"
    echo "campaign_state.sh: restored $dest at step $(awk '$1 == "step" {print $2}' "$state/RUN"); resume it with cign-train --resume $dest"
}

case "${1:-}" in
    save)
        [[ $# -ge 2 && $# -le 3 ]] || die "$usage"
        save "$2" "${3:-$root/results/campaign_state/large_channel}"
        ;;
    restore)
        [[ $# -eq 3 ]] || die "$usage"
        restore "$2" "$3"
        ;;
    *) die "$usage" ;;
esac
