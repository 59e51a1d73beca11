#!/usr/bin/env bash
# The test command (README "Set-up", second command; .ci/run calls it).
# Installs the dev dependencies and the real peers the tests start (Debian packages, when this
# machine can install them), then runs the quality gates: ruff, mypy (strict), pytest (-W error).
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  missing=()
  while read -r pkg; do
    case "$pkg" in ''|'#'*) continue ;; esac
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done < scripts/apt-packages.txt
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing Debian peers: ${missing[*]}"
    apt-get update -qq
    # policy-rc.d keeps package scripts from starting system services: tests start their own.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "not root or no apt-get: tests needing Debian peers will be skipped" >&2
fi

python3 -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true

echo "== ruff"; ruff check src tests bench
echo "== mypy"; mypy
echo "== pytest"; python3 -m pytest -q "$@"
