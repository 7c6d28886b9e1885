"""djaploy configuration for the ledger project.

djaploy reads this file at deploy time, on your machine; it is never imported
by the running app. Hosts live in inventory/<env>.py, files under
deploy_files/<env>/ are installed on each host of that environment, and the
project's own djaploy modules live in modules/.
"""

from djaploy.config import DjaployConfig

config = DjaployConfig(
    # Names the app on the server: its user, directories and services.
    project_name="ledger",
    # After a deploy, djaploy requests this path and expects 200 before it
    # switches traffic to the new release (the view runs a real SELECT 1).
    health_check_path="/health/",
    # Plain environment variables given to the app on every host.
    env_vars={"DJANGO_DEBUG": "0"},
    # Secret environment variables, resolved on the deploying machine:
    # "env:LEDGER_SECRET_KEY" reads it from your local LEDGER_SECRET_KEY,
    # so the value never has to be written in this repository.
    secrets={"DJANGO_SECRET_KEY": "env:LEDGER_SECRET_KEY"},
    # What provisions and deploys a host, in this order: the built-ins, then
    # the ledger's own module (infra/modules/nightly.py), which runs
    # `manage.py ledger_report` every night with a systemd timer.
    modules=[
        "djaploy.modules.core",
        "djaploy.modules.nginx",
        "djaploy.modules.systemd",
        "infra.modules.nightly.NightlyReport",
    ],
)
