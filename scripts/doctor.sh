#!/usr/bin/env bash
# Prints what cign sees: torch version and library directory, CUDA, data and weight locations.
# Builds cign-train first if needed (the first build also sets up the venv).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
echo "venv python torch:     $(.venv/bin/python -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)' 2>/dev/null || echo 'no venv yet (scripts/setup.sh makes it)')"
exec cargo run -q -p cign-train -- --doctor
