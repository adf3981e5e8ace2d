#!/usr/bin/env python3
"""Renders results/large_channel_segments.md: every segment (one invocation of cign-train) of
the paper-recipe campaign, read from a copy of the run's own log
(results/runs/large_channel_campaign.run.log, copied from RUN/run.log after each session).

    python3 scripts/campaign_segments.py [ROOT] > results/large_channel_segments.md
    python3 scripts/campaign_segments.py --total [ROOT]   # the one-line total only
    python3 scripts/campaign_segments.py --run 1 > results/large_channel_segments_run1.md
    python3 scripts/campaign_segments.py --run 2 > results/large_channel_segments_run2.md

ROOT is the folder that holds results/ (the repository by default). `--run N` (any N >= 1) reads
the log of an earlier run of the campaign, whose records carry `_runN`
(results/runs/large_channel_campaign_runN.run.log; run 1 was lost at step 3773, run 2 after step
2988 with its records ending at step 2896); the current run's records have no suffix. Usage
errors (an unknown option, --run without a number, more than one ROOT) and a missing log exit 2
with one line. A segment starts at the trainer's "run directory" line and ends at its "stopped
... at step N" line; one without a stop line (killed by SIGKILL, a crash, the session's end)
ends at its last line, and its steps are those up to the checkpoint the next segment that
trained resumed from; a later start that failed before resuming is listed and not counted. Wall
times are of the log's timestamps (UTC), so they include validations, checkpoints and any SIGSTOP pause; the campaign
page's annotated table says which pauses a segment had. A segment still running (the last one,
without a stop line) is listed but left out of the totals. Nothing here is edited by hand."""
import datetime as dt
import pathlib
import re
import sys

USAGE = "usage: campaign_segments.py [--total] [--run N] [ROOT]"


def usage_error(message):
    print(f"campaign_segments.py: {message} ({USAGE})", file=sys.stderr)
    sys.exit(2)


# The current run's records have no suffix; an earlier run's carry `_runN` (`--run N`).
TOTAL_ONLY = False
RUN = None
positional = []
argv = sys.argv[1:]
while argv:
    a = argv.pop(0)
    if a == "--total":
        TOTAL_ONLY = True
    elif a == "--run":
        if RUN is not None:
            usage_error("--run given twice")
        if not argv or not argv[0].isdecimal() or not argv[0].isascii() or int(argv[0]) < 1:
            usage_error("--run takes a run number (1, 2, ...)")
        RUN = int(argv.pop(0))
    elif a.startswith("-"):
        usage_error(f"unknown option {a}")
    else:
        positional.append(a)
if len(positional) > 1:
    usage_error("one ROOT at most")
SUFFIX = f"_run{RUN}" if RUN else ""
ROOT = pathlib.Path(positional[0]) if positional else pathlib.Path(__file__).resolve().parent.parent
LOG = ROOT / "results" / "runs" / f"large_channel_campaign{SUFFIX}.run.log"
TARGET_EPOCHS = 25
WORDS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen", "twenty"]


def stamp(line):
    """The UTC time at the start of a tracing line, or None for other lines."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z ", line)
    return dt.datetime.fromisoformat(m.group(1)[:26]) if m else None


def segments(lines):
    """One dict per invocation: start, end, first and last step, how it ended."""
    out = []
    for line in lines:
        t = stamp(line)
        if t is None:
            continue
        if " INFO run directory " in line:
            out.append({"start": t, "from": 0, "to": None, "end": None, "how": None, "last": t,
                        "clock": None, "resumed": False, "failed": False})
            continue
        if not out:
            continue
        seg = out[-1]
        seg["last"] = t
        m = re.search(r"resumed from .* at step (\d+)", line)
        if m:
            seg["from"], seg["resumed"] = int(m.group(1)), True
        m = re.search(r"at step (\d+) \([^)]*\): ([\d.]+) s of training", line)
        if m:
            seg["clock"] = (int(m.group(1)), float(m.group(2)))
        m = re.search(r"INFO (stopped[^:]*?) at step (\d+)", line)
        if m:
            seg["how"], seg["to"], seg["end"] = m.group(1), int(m.group(2)), t
    for i, seg in enumerate(out):
        if seg["end"] is not None or i + 1 == len(out):
            continue
        if i > 0 and not seg["resumed"]:
            # A start that failed before resuming (bad data, no CUDA): no training.
            seg["failed"] = True
            continue
        later = next((s for s in out[i + 1:] if s["resumed"]), None)
        if later is not None:
            # Killed without a stop line: it ends at its last line, with the checkpoint the next
            # segment that trained resumed from.
            seg["end"], seg["to"] = seg["last"], later["from"]
            seg["how"] = "no stop line (killed); a later segment resumed from its last checkpoint"
    return out


def duration(seconds):
    s = int(round(seconds))
    return f"{s // 3600} h {s % 3600 // 60:02d} min {s % 60:02d} s"


def render(text):
    lines = text.splitlines()
    segs = segments(lines)
    # Steps per epoch: from a mid-epoch position ("batch 49 of 235") or an epoch's end ("at step
    # 470 (end of epoch 2)").
    per_epoch = max((int(n) for n in re.findall(r"batch \d+ of (\d+)", text)), default=None)
    if per_epoch is None:
        ends = re.findall(r"at step (\d+) \(end of epoch (\d+)\)", text)
        per_epoch = next((int(a) // int(b) for a, b in ends if int(b) > 0), None)
    done = [s for s in segs if s["end"] is not None]
    steps = sum(s["to"] - s["from"] for s in done)
    wall = sum((s["end"] - s["start"]).total_seconds() for s in done)
    count = WORDS[len(done)] if len(done) < len(WORDS) else str(len(done))
    epochs = f" = {steps / per_epoch:.2f} of {TARGET_EPOCHS} epochs" if per_epoch else ""
    total = (f"{steps:,} steps{epochs} in {count} segment{'s' if len(done) != 1 else ''}, "
             f"{duration(wall)} of wall time")
    clock = [s["clock"] for s in done if s["clock"]]
    if clock:
        # The trainer's own count of training seconds, carried across resumes (it counts
        # SIGSTOP pauses, not the time between segments).
        step, secs = clock[-1]
        total += f" ({secs / 3600:.2f} h by the trainer's clock at step {step:,})"
    run_dir = next((l.split(" INFO run directory ", 1)[1] for l in lines if " INFO run directory " in l), "RUN")
    run_arg = f" --run {RUN}" if RUN else ""
    rows = ["# Campaign segments, from the run's log", "",
            f"Written by `python3 scripts/campaign_segments.py{run_arg} > results/large_channel_segments{SUFFIX}.md` from",
            f"[`runs/large_channel_campaign{SUFFIX}.run.log`](runs/large_channel_campaign{SUFFIX}.run.log), a copy of",
            f"`{run_dir}/run.log`. Wall time is the log's (UTC),",
            "pauses included; s/step is wall time over steps. The annotated table with commands,",
            f"threads and pauses is on [the campaign page](large_channel_campaign{SUFFIX}.md).", "",
            "| segment | start (UTC) | end (UTC) | steps | wall | s/step | how it ended |",
            "|---|---|---|---|---|---|---|"]
    for i, s in enumerate(segs, 1):
        if s["failed"]:
            rows.append(f"| {i} | {s['start']:%Y-%m-%d %H:%M:%S} | {s['last']:%Y-%m-%d %H:%M:%S} | - | - | - | "
                        "failed start (no training; not counted) |")
            continue
        if s["end"] is None and s is not segs[-1]:
            rows.append(f"| {i} | {s['start']:%Y-%m-%d %H:%M:%S} | {s['last']:%Y-%m-%d %H:%M:%S} | from {s['from']} "
                        "| - | - | no stop line and no later segment resumed (not counted) |")
            continue
        if s["end"] is None:
            rows.append(f"| {i} | {s['start']:%Y-%m-%d %H:%M:%S} | running | from {s['from']} | - | - | "
                        f"still running at the copy's last line ({s['last']:%H:%M:%S}) |")
            continue
        n = s["to"] - s["from"]
        w = (s["end"] - s["start"]).total_seconds()
        rate = f"{w / n:.1f}" if n else "-"
        rows.append(f"| {i} | {s['start']:%Y-%m-%d %H:%M:%S} | {s['end']:%Y-%m-%d %H:%M:%S} | "
                    f"{s['from']} → {s['to']} | {duration(w)} | {rate} | {s['how']} |")
    rows += ["", f"Total: {total}.", ""]
    return "\n".join(rows), total


def main():
    if not LOG.is_file():
        print(f"campaign_segments.py: no campaign log at {LOG}", file=sys.stderr)
        sys.exit(2)
    page, total = render(LOG.read_text())
    if TOTAL_ONLY:
        print(total)
    else:
        print(page, end="")


if __name__ == "__main__":
    main()
