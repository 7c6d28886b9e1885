#!/usr/bin/env bash
# Run djaploy's tests: unit tests, then end-to-end tests that boot sandbox VPS hosts and
# deploy to them over real SSH. Installs what it needs first. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The root filesystems the end-to-end tests boot: the whole suite runs on Debian 12, a smoke set
# (tests/e2e/test_debian13.py) on Debian 13. Built once each (a few minutes), then reused from the
# cache (/var/cache/djaploy-sandbox, or $DJAPLOY_SANDBOX_CACHE: keep it between runs).
.venv/bin/python -m djaploy.sandbox prepare --os debian-12 --os debian-13
# Test modules run side by side (pytest-xdist, one file per worker: a module shares its sandbox hosts);
# most of an end-to-end test is waiting on a host. DJAPLOY_TEST_WORKERS=0 runs everything in this process.
workers=${DJAPLOY_TEST_WORKERS:-3}
if [ "$workers" = 0 ]; then
    exec .venv/bin/python -m pytest -ra "$@"
fi
exec .venv/bin/python -m pytest -ra -n "$workers" --dist loadfile "$@"
