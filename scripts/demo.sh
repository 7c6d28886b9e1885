#!/usr/bin/env bash
# The demo: boot a local sandbox VPS, provision it and deploy infra_example (the "ledger"
# project) to it with djaploy, then show it answering. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

PY=.venv/bin/python
export DJAPLOY_SANDBOX_NAME=${DJAPLOY_SANDBOX_NAME:-demo}
$PY -m djaploy.sandbox up --count 1

# The app's secret key comes from the deployer's environment (see infra_example/infra/config.py).
mkdir -p .djaploy && chmod 700 .djaploy
[ -s .djaploy/demo-secret-key ] || $PY -c "import secrets; print(secrets.token_urlsafe(50))" > .djaploy/demo-secret-key
LEDGER_SECRET_KEY=$(cat .djaploy/demo-secret-key)
export LEDGER_SECRET_KEY

cd infra_example
../$PY manage.py configureserver --env sandbox
../$PY manage.py deploy --env sandbox --latest
cd ..

ADDRESS=$($PY -c "from djaploy.sandbox import sandbox_hosts; print(sandbox_hosts()[0].address)")
echo
echo "== the ledger app at http://$ADDRESS/ =="
curl -sS "http://$ADDRESS/" | sed -n '1,40p'
echo
echo "== its stylesheet, served by nginx =="
curl -sS "http://$ADDRESS/static/entries/style.css" | head -5
echo
echo "Open http://$ADDRESS/ from this machine. Stop the sandbox with: $PY -m djaploy.sandbox down"
