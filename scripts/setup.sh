#!/usr/bin/env bash
# Creates the project-local Python environment that provides libtorch (PyTorch 2.11.0,
# the version tch 0.24.0 is built against) and links `.venv/torch` to the torch package so
# that `.cargo/config.toml` can point LIBTORCH at it. Idempotent and safe to run in parallel
# (a lock serialises concurrent callers); does nothing when the environment is complete.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
torch_version="2.11.0"
stamp="$venv/.cign-setup-done-torch-$torch_version"

[ -f "$stamp" ] && exit 0

mkdir -p "$root/target"
exec 9>"$root/target/.cign-setup.lock"
flock 9
[ -f "$stamp" ] && exit 0

python="${CIGN_PYTHON:-python3}"
if ! command -v "$python" >/dev/null 2>&1; then
  echo "cign setup: '$python' not found; install Python 3.10 or newer with pip and venv (torch $torch_version needs 3.10+), or set CIGN_PYTHON" >&2
  exit 2
fi
# torch 2.11.0 has wheels for Python 3.10 and newer only: say so before pip fails obscurely.
if ! py_version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2]); sys.exit(sys.version_info < (3, 10))' 2>/dev/null)"; then
  echo "cign setup: '$python' is Python ${py_version:-of unknown version}; torch $torch_version needs Python 3.10 or newer: install one with pip and venv, or set CIGN_PYTHON" >&2
  exit 2
fi
if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "cign setup: '$python' has no venv/ensurepip module (Debian/Ubuntu: apt-get install python3-venv), or set CIGN_PYTHON" >&2
  exit 2
fi

# Cargo captures what the rustc wrapper prints, so a fresh clone would sit silent for a minute
# or two: say what is happening on the terminal itself when there is one, and on stderr too.
say() {
  echo "$*" >&2
  if [ -z "${CI:-}" ] && { : >/dev/tty; } 2>/dev/null; then
    echo "$*" >/dev/tty
  fi
}

start=$(date +%s)
say "cign setup: creating $venv with torch==$torch_version (first build only; about 4.7 GB download, one to four minutes)"
rm -rf "$venv"
"$python" -m venv "$venv"
# --no-cache-dir: the wheels are ~4.7 GB and would otherwise be kept a second time in
# ~/.cache/pip (a CI disk ran out of space with both).
"$venv/bin/python" -m pip install --quiet --no-cache-dir --disable-pip-version-check "torch==$torch_version" numpy >&2
torch_dir="$("$venv/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
ln -sfn "$torch_dir" "$venv/torch"
[ -f "$venv/torch/lib/libtorch_cpu.so" ] || { echo "cign setup: $venv/torch/lib/libtorch_cpu.so missing after install" >&2; exit 1; }
touch "$stamp"
say "cign setup: done in $(( $(date +%s) - start )) s; libtorch at $torch_dir; compiling next (about 10 minutes the first time on 2 cores)"
