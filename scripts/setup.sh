#!/usr/bin/env bash
# Install everything djaploy's demo and tests need on a fresh Debian machine (run as root):
# the host tools for sandbox VPS hosts, and a virtualenv with djaploy and its test deps.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "run as root: the sandbox VPS needs network namespaces and systemd-nspawn" >&2
    exit 1
fi

need=()
for tool in debootstrap:debootstrap systemd-nspawn:systemd-container ip:iproute2 tinyproxy:tinyproxy \
            ssh:openssh-client ssh-keygen:openssh-client curl:curl git:git \
            pebble:pebble pebble-challtestsrv:pebble openssl:openssl \
            named:bind9 tsig-keygen:bind9 dig:dnsutils; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "installing host packages: ${need[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv || {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv && "$PYTHON" -m venv .venv; }
fi
.venv/bin/pip install -q --disable-pip-version-check -e ".[test]"
