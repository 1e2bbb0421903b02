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
# Model-check hot's own concurrency. Own target dir: the cfg flag rebuilds
# every crate and must not invalidate the normal build; without the GUI,
# whose crates have nothing to do with src/hot.
RUSTFLAGS="--cfg waferscope_loom" CARGO_TARGET_DIR=target/loom \
  cargo test --release --no-default-features --lib loom_tests
