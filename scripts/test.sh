#!/usr/bin/env bash
# Runs the whole test suite, installing what it needs first (Debian 12).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/hearth-target}" CARGO_INCREMENTAL=0 CARGO_TERM_COLOR=never
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
# Real third-party clients for the compatibility tests (Debian packages).
pkgs=(litmus owncloud-client-cmd nextcloud-desktop-cmd rclone python3-venv)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}"
fi
# Python clients (tuspy, Authlib) in a venv outside the checkout, reused between runs. (Not HEARTH_*:
# every HEARTH_* variable is configuration, and unknown keys are refused.)
export TESTS_VENV="${TESTS_VENV:-/var/cache/hearth-venv}"
if ! "$TESTS_VENV/bin/python" -c 'import tusclient, requests, authlib' >/dev/null 2>&1; then
  python3 -m venv "$TESTS_VENV"
  "$TESTS_VENV/bin/pip" install --quiet -r tests/requirements.txt
fi
export TESTS_PYTHON="$TESTS_VENV/bin/python"
# Keep the shared build cache bounded.
size_mb=$(du -sm "$CARGO_TARGET_DIR" 2>/dev/null | cut -f1 || echo 0)
if [ "${size_mb:-0}" -gt 20000 ]; then rm -rf "$CARGO_TARGET_DIR"; fi
# One package selection for every cargo call (no feature churn); gated real-client tests included.
cargo test --workspace --locked -- --include-ignored
