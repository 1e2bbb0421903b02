#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit + integration tests, and the
# loom model checks of src/hot. README's Quick start and .ci/run call this.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --check
# Lints: the default build (no system library needed) and the GigE camera
# driver (feature `gige`: the aravis bindings).
cargo clippy --all-targets -- -D warnings
cargo clippy --features gige --lib --test gige_camera -- -D warnings
# One test build for everything: with `gige`, so the camera tests below,
# the KLARF interop and the valgrind run reuse it instead of compiling the
# crate's test binaries a second time (the default build's own code is
# linted above; the camera tests are `#[ignore]`d here).
cargo test --all-targets --features gige
# The real window under Xvfb at full load with the binary just built: no
# frame gap over 100 ms after start-up; prints the frame figures.
./scripts/gui-ci-check.sh
# The GigE camera driver against Aravis' fake camera, inside a private
# network namespace.
./scripts/gige-test.sh
# KLARF read back by two independent readers (PyPI, pinned, in a venv).
./scripts/klarf-interop.sh
# Model-check hot's own concurrency. The `loom` feature rebuilds only this
# crate: the dependencies are the test build's, already compiled above.
cargo test --features loom --lib loom_tests
# The hot unit tests under valgrind: an uninitialised byte behind a safe
# reference (e.g. a pool buffer read before any camera wrote it) fails the
# suite here even where it happens to read as zero natively. About 10 s.
hot_tests=$(cargo test --features gige --lib --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["lib"]:
        print(m["executable"])')
valgrind -q --error-exitcode=1 "$hot_tests" hot:: --test-threads=1
