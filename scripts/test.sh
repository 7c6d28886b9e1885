#!/usr/bin/env bash
# Run djaploy's tests: unit tests, then end-to-end tests that boot sandbox VPS hosts and
# deploy to them over real SSH. Installs what it needs first. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -ra "$@"
