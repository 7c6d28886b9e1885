"""The application's own version. Bump it to see which code a server runs (GET /version/)."""

APP_VERSION = "1"
