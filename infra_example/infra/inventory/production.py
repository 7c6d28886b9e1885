"""Hosts of the "production" environment: an example for a real server.

Replace the placeholder address and domain with your own. The server needs
SSH access for ``ssh_user`` with a key your machine holds (sudo rights to set
up the system), and DNS for each domain pointing at it.
"""

from djaploy.config import HostConfig

hosts = [
    HostConfig(
        # A name for the host, used in djaploy's output.
        "ledger-1",
        # Where to connect: 203.0.113.10 is a documentation address (RFC 5737).
        ssh_host="203.0.113.10",
        ssh_user="deploy",
        # Domains the site is served under.
        domains=["ledger.example.com"],
        # Django only answers requests for the hosts it is told about.
        env_vars={"DJANGO_ALLOWED_HOSTS": "ledger.example.com"},
    ),
]
