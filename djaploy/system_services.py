"""Commands on the host's system services that core code runs: retiring leftover app units, reloading nginx.

Strategies and deploy_files/ need these, and core code never imports a built-in module
(modules build on core, not the reverse), so they live here; the nginx module uses
NGINX_RELOAD too.
"""

from __future__ import annotations

from collections.abc import Sequence

from djaploy import shell
from djaploy.layout import AppService

#: validate, reload gracefully (in-flight requests finish), and wait until the reload is done
NGINX_RELOAD = f"nginx -t -q && {shell.systemctl('reload', 'nginx')} && {shell.wait_nginx_reloaded()}"


def retire_units_command(services: Sequence[AppService]) -> str:
    """Stop, disable and remove the units of services another strategy left behind (a shell
    fragment: strategies run it in their one clean-up round trip, after traffic has moved)."""
    parts = [
        f"if [ -e {shell.q(service.service_path)} ]; then {shell.systemctl('disable', service.service, service.socket_unit, flags=['--now'])} "
        f"&& rm -f {shell.join([service.service_path, service.socket_unit_path])} || exit 1; retired=1; fi"
        for service in services
    ]
    return "retired=0; " + "; ".join(parts) + '; if [ "$retired" = 1 ]; then ' + shell.systemctl("daemon-reload") + "; fi"
