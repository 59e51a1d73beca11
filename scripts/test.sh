#!/usr/bin/env bash
# The test command (README "Set-up", second command; .ci/run calls it).
# Installs the dev dependencies and the real peers the tests start (Debian packages, when this
# machine can install them), then runs the quality gates: ruff, mypy (strict), pytest (-W error).
#
# Python: the active virtual environment if there is one; otherwise ./.venv, created on the
# first run. A system Python under PEP 668 (Debian 12, Ubuntu 24.04: "externally-managed-
# environment") refuses pip installs; a virtual environment never does. PYTHON=/path/python3
# chooses the interpreter the .venv is made from (3.11 or later).
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
    # Only for this install, and only if we made it: the trap removes it again however the
    # install ends, so the machine's own package scripts work as before afterwards.
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
      made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ "$made_policy" = 1 ]; then
      rm -f /usr/sbin/policy-rc.d
      trap - EXIT
    fi
  fi
else
  echo "not root or no apt-get: tests needing Debian peers will be skipped" >&2
fi

base="${PYTHON:-python3}"
"$base" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || { echo "pacsradar needs Python 3.11 or later; $base is $("$base" -V 2>&1)" >&2; exit 2; }
if "$base" -c 'import sys; sys.exit(0 if sys.prefix != sys.base_prefix else 1)'; then
  py="$base"  # inside a virtual environment already: install into it
else
  if [ ! -x .venv/bin/python ]; then
    echo "creating the virtual environment .venv ($("$base" -V 2>&1))"
    "$base" -m venv .venv || {
      echo "'$base -m venv' failed; on Debian/Ubuntu: apt-get install python3-venv" >&2
      exit 2
    }
  fi
  py=.venv/bin/python
fi
# A failed install stops here (pipefail: pip's status, not the filter's, decides); the filter
# only drops pip's notes about configured package indexes that do not exist on this machine.
"$py" -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | { grep -v "^WARNING: Location" || true; }

# The Node.js DICOM peer (dcmjs-dimse, pinned by tests/lab/node/package-lock.json) lives in a
# test-owned directory; without node/npm its tests are skipped.
if command -v npm >/dev/null 2>&1; then
  npm ci --prefix tests/lab/node --no-audit --no-fund --loglevel=error >/dev/null || echo "npm ci failed: dcmjs-dimse tests will be skipped" >&2
fi

echo "== ruff"; "$py" -m ruff check src tests bench
echo "== mypy"; "$py" -m mypy
echo "== pytest"; "$py" -m pytest -q "$@"
