"""Run by the deployer's Python in manage.py's folder, with only the host's environment, to read the
Django settings and import the WSGI application the way the server would; prints one JSON line.

Sent as text (`python -c`, so manage.py's folder is first on sys.path) by
djaploy.verify.deployed_settings.probe_settings, with argv WSGI NONCE HIDE_DJAPLOY MARKER.
SECRET_KEY never leaves this process: only the names of variables holding it, and its HMAC with NONCE.
"""
import hashlib, hmac, importlib, json, os, sys, traceback
wsgi, nonce, hide_djaploy, marker = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
if hide_djaploy:
    sys.modules["djaploy"] = None  # servers have no djaploy: import fails, find_spec says None
report = {}

def failure(exc):
    if isinstance(exc, ImportError) and (exc.name or "").partition(".")[0] == "djaploy":
        return "ModuleNotFoundError: No module named 'djaploy'"
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()[-2000:]

module, _, attr = wsgi.partition(":")
try:
    if not callable(getattr(importlib.import_module(module), attr or "application")):
        report["wsgi_error"] = wsgi + " is not callable"
except BaseException as exc:
    report["wsgi_error"] = failure(exc)
try:
    from django.conf import settings
    key = str(settings.SECRET_KEY)
    report["settings"] = {
        "DEBUG": bool(settings.DEBUG),
        "ALLOWED_HOSTS": [str(h) for h in settings.ALLOWED_HOSTS],
        "STATIC_ROOT": None if settings.STATIC_ROOT is None else os.fspath(settings.STATIC_ROOT),
        "MEDIA_ROOT": os.fspath(settings.MEDIA_ROOT) if settings.MEDIA_ROOT else None,
        "SQLITE": [os.fspath(db.get("NAME") or "") for db in settings.DATABASES.values()
                   if "sqlite3" in str(db.get("ENGINE", ""))],
        "DEFAULT_ENGINE": str(settings.DATABASES.get("default", {}).get("ENGINE", "")),
        "SECRET_KEY_FROM": sorted(n for n, v in os.environ.items() if v == key and not n.startswith("DJAPLOY_")),
        "SECRET_KEY_MAC": hmac.new(nonce.encode(), key.encode(), hashlib.sha256).hexdigest(),
    }
except BaseException as exc:
    report["settings_error"] = failure(exc)
sys.stdout.write("\n" + marker + json.dumps(report) + "\n")
