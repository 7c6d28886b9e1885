
# --- djaploy 1.x, set up as its README says (appended by bench/peer.py) ---
# djaploy is a dependency of the project (pyproject.toml), so the find_spec() test above
# finds it on the server too and the app is installed everywhere, as 1.x expects.
INSTALLED_APPS += ["djaploy.apps.nginx", "djaploy.apps.systemd", "ops"]
PROJECT_DIR = BASE_DIR
GIT_DIR = PROJECT_DIR
DJAPLOY_CONFIG_DIR = PROJECT_DIR / "ops" / "infra"

# On the server, djaploy 1.x writes ledger/settings/local.py (generate_local_settings=True).
try:
    from .local import *  # noqa: F401,F403
except ImportError:
    pass
