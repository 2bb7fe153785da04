#!/usr/bin/env bash
# Install the peer servers the benchmark compares Ecrin with, and the benchmark's Python tools.
#   Debian: apache2 (mod_dav, mod_dav_fs), nginx with the WebDAV extension module.
#   Python: the `bench` extra (aiohttp, wsgidav, cheroot, ...) into the environment of $PYTHON
#   (default: the active virtual environment's python, else .venv/bin/python).
# Usage: bench/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(apache2 nginx libnginx-mod-http-dav-ext)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}" >&2
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  # A policy-rc.d that answers 101 keeps the system-wide apache2/nginx services from starting:
  # the benchmark runs its own instances on private ports.
  created_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null || status=$?
  [[ -z "$created_policy" ]] || $SUDO rm -f /usr/sbin/policy-rc.d
  [[ -z "${status:-}" ]] || exit "$status"
fi

if [[ -z "${PYTHON:-}" ]]; then
  if [[ -n "${VIRTUAL_ENV:-}" ]]; then PYTHON="$VIRTUAL_ENV/bin/python"; else PYTHON=.venv/bin/python; fi
fi
[[ -x "$PYTHON" ]] || { echo "no Python environment at $PYTHON: create one or set PYTHON" >&2; exit 1; }
"$PYTHON" -m pip install -q --disable-pip-version-check -e ".[bench]"
echo "bench setup done: apache2 $(apache2 -v | sed -n 's/.*Apache\/\([^ ]*\).*/\1/p'), $(nginx -v 2>&1)"
