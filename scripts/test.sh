#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit + integration tests, and the
# loom model checks of src/hot. README's Quick start and .ci/run call this.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
# KLARF read back by two independent readers (PyPI, pinned, in a venv).
./scripts/klarf-interop.sh
# Model-check hot's own concurrency (own target dir: --cfg loom rebuilds
# every crate, and must not invalidate the normal build).
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
  cargo test --release --lib loom_tests
