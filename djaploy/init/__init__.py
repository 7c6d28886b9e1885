"""`manage.py djaploy_init`: a fresh project's infra folder, production settings and gunicorn, shown before written.

    facts.py           what the project is (manage.py, settings file, name, Python, dependency manager)
    infra_files.py     the text of infra/config.py and infra/inventory/<env>.py (`Answers`: the flags)
    settings_block.py  the DJAPLOY_ENV-guarded production block and the INSTALLED_APPS entry (idempotent)
    gunicorn.py        how gunicorn joins the dependencies: a requirements line, or the manager's command
    changes.py         `plan_init` (every change, as data; diffs) and `apply`
"""

from __future__ import annotations

from djaploy.init.changes import FileChange, InitPlan, apply, plan_init
from djaploy.init.facts import ProjectFacts, find_manage_py, inspect_new_project
from djaploy.init.infra_files import Answers, secret_variable

__all__ = ["Answers", "FileChange", "InitPlan", "ProjectFacts", "apply", "find_manage_py", "inspect_new_project",
           "plan_init", "secret_variable"]
