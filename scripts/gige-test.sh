#!/usr/bin/env bash
# The GigE Vision camera tests (cargo feature `gige`) against Aravis' fake
# camera. Built outside, then run inside a private network namespace
# (`unshare -n`, loopback only): GigE Vision discovery broadcasts on every
# interface, and nothing here may reach a real network. Needs root (or
# user namespaces) for unshare, libaravis-dev, libusb-1.0-0-dev,
# aravis-tools and iproute2 (.ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --features gige --test gige_camera --no-run
# `--ignored`: the tests are ignored in a plain `cargo test --features gige`
# (they need the namespace and the fake camera this script provides).
exec unshare -n sh -c 'ip link set lo up && exec cargo test --offline --features gige --test gige_camera -- --ignored --test-threads 1 "$@"' sh "$@"
