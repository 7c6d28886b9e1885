from django.apps import AppConfig


class DjaployAppConfig(AppConfig):
    name = "djaploy"
    verbose_name = "djaploy"

    def ready(self) -> None:
        from django.core import checks

        from djaploy.checks import djaploy_checks

        # Deployment checks: `manage.py check --deploy` (and `verify`) run them; they never block
        # runserver or migrate during development, where DEBUG is on by design.
        checks.register(djaploy_checks, "djaploy", deploy=True)
