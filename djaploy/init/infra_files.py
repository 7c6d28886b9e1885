"""The text of the two files init writes: infra/config.py and infra/inventory/<env>.py."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from djaploy.init.facts import ProjectFacts

#: the variable the deployed settings read the secret key from (the config maps it from the deployer's)
SECRET_KEY_VARIABLE = "DJANGO_SECRET_KEY"


@dataclass(frozen=True)
class Answers:
    """What the user told init (flags or prompts)."""

    env: str
    host: str
    domain: str
    ssh_user: str = "deploy"
    ssh_key: str = "~/.ssh/id_ed25519"
    strategy: str = "in_place"
    ssh_known_hosts: str | None = None


def secret_variable(project_name: str) -> str:
    """The deployer's environment variable holding the secret key: "my-site" -> "MY_SITE_SECRET_KEY"."""
    return re.sub(r"[^A-Z0-9_]", "_", project_name.upper()) + "_SECRET_KEY"


def _q(value: str) -> str:
    """A Python string literal (JSON's quoting is valid Python for str)."""
    return json.dumps(value)


def render_config(facts: ProjectFacts, answers: Answers) -> str:
    """infra/config.py: the detected name, Python and dependency manager; the secret from the deployer."""
    manager = f"    dependency_manager={_q(facts.dependencies.manager)},\n" if facts.dependencies else ""
    variable = secret_variable(facts.project_name)
    return f'''"""djaploy configuration for {facts.project_name} (written by `manage.py djaploy_init`: edit it freely).

djaploy reads this file on your machine when it deploys; the running app never imports it.
Hosts are in inventory/<env>.py.
"""

from djaploy.config import DjaployConfig

config = DjaployConfig(
    # Names the app on the server: its user, folders and services.
    project_name={_q(facts.project_name)},
    python_version={_q(facts.python_version)},
{manager}    deployment_strategy={_q(answers.strategy)},
    # A deploy goes live only once this page answers 2xx (point it at a health view of your own).
    health_check_path={_q(facts.health_check_path)},
    # Read from YOUR environment when you deploy (export {variable}=...), never written here.
    secrets={{{_q(SECRET_KEY_VARIABLE)}: {_q("env:" + variable)}}},
)
'''


def render_inventory(answers: Answers) -> str:
    """infra/inventory/<env>.py: one host; Django accepts the domain it is served under."""
    known_hosts = f"        ssh_known_hosts_file={_q(answers.ssh_known_hosts)},\n" if answers.ssh_known_hosts else ""
    return f'''"""Hosts of the "{answers.env}" environment (written by `manage.py djaploy_init`)."""

from djaploy.config import HostConfig

hosts = [
    HostConfig(
        "web1",
        ssh_host={_q(answers.host)},
        ssh_user={_q(answers.ssh_user)},
        ssh_key={_q(answers.ssh_key)},
{known_hosts}        domains=[{_q(answers.domain)}],
        # Django answers only for the hosts it is told about (the settings read this variable).
        env_vars={{"DJANGO_ALLOWED_HOSTS": {_q(answers.domain)}}},
    ),
]
'''
