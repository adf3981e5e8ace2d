"""The CPU a measurement ran on, for the JSON records of scripts/compare_speed.py and
scripts/precision_speed.py: `platform.processor()` says only "x86_64" on Linux."""
import os
import pathlib
import platform


def describe():
    """'<model name> (family F, model M), N CPUs' from /proc/cpuinfo where it exists, else the
    architecture and CPU count."""
    fields = {}
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    ids = (f" (family {fields['cpu family']}, model {fields['model']})"
           if "cpu family" in fields and "model" in fields else "")
    return f"{name}{ids}, {os.cpu_count()} CPUs"
