#!/usr/bin/env bash
# Builds Hearth and starts `hearth server` on the default data directory (~/.local/share/hearth),
# listening on 0.0.0.0:9200. On the first run it creates the account `admin` and prints its password.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v cargo >/dev/null 2>&1 || ! command -v cc >/dev/null 2>&1; then
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends build-essential cargo
fi
cargo build --release --locked -p hearth-server --bin hearth
HEARTH=target/release/hearth
[ -n "${CARGO_TARGET_DIR:-}" ] && HEARTH="$CARGO_TARGET_DIR/release/hearth"
if [ -z "$("$HEARTH" user list)" ]; then
  pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  printf '%s\n' "$pw" | "$HEARTH" user add admin --password-stdin
  echo "First run: created user 'admin' with password: $pw"
fi
# Where the CA is and its fingerprint: phones and laptops trust it once (see README, HTTPS).
"$HEARTH" info
exec "$HEARTH" server "$@"
