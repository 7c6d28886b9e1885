"""Hosts of the "sandbox" environment: the local throw-away VPS started by
``python -m djaploy.sandbox up``. Deploy with the environment name "sandbox"."""

from djaploy.config import HostConfig
from djaploy.errors import ConfigError
from djaploy.sandbox import sandbox_hosts

hosts = [
    HostConfig(
        vm.name,
        ssh_host=vm.address,
        ssh_user="root",
        ssh_key=vm.key_path,
        ssh_known_hosts_file=vm.known_hosts_path,
        domains=[vm.address],
        # The app is reached by the VM's address, so Django must accept it.
        env_vars={"DJANGO_ALLOWED_HOSTS": vm.address},
    )
    for vm in sandbox_hosts()
]

if not hosts:
    raise ConfigError(
        "no sandbox VPS is running; start one with: python -m djaploy.sandbox up",
        field="hosts",
    )
