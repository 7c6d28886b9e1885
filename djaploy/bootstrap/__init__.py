"""`manage.py bootstrap`: from a provider's fresh VPS (root, often with a password) to a host
djaploy deploys to as `ssh_user` with a key.

`sshd.py` (the hardening drop-in and how it is installed safely), `firewall.py` (which ports
a host's roles open, as an nftables ruleset), `steps.py` (what changes on a host, through a
`Plan`), `run.py` (the order: log in as ssh_user or else create it as root, prove it, harden).
"""
