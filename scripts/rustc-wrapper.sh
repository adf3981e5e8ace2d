#!/usr/bin/env bash
# Cargo's rustc wrapper (see .cargo/config.toml): makes sure the project venv with libtorch
# exists before anything is compiled, so a plain `cargo build/test/run` on a fresh clone sets
# itself up. After the first run setup.sh returns at its first file test.
"$(dirname "${BASH_SOURCE[0]}")/setup.sh" || { echo "cign: scripts/setup.sh failed; see the messages above" >&2; exit 1; }
exec "$@"
