#!/usr/bin/env bash
# Runs the whole test suite, installing what it needs first (Debian 12).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/hearth-target}" CARGO_INCREMENTAL=0 CARGO_TERM_COLOR=never
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v litmus >/dev/null 2>&1; then
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends litmus
fi
# Keep the shared build cache bounded.
size_mb=$(du -sm "$CARGO_TARGET_DIR" 2>/dev/null | cut -f1 || echo 0)
if [ "${size_mb:-0}" -gt 20000 ]; then rm -rf "$CARGO_TARGET_DIR"; fi
# One package selection for every cargo call (no feature churn); gated real-client tests included.
cargo test --workspace --locked -- --include-ignored
