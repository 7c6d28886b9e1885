from django.apps import AppConfig


class DjaployAppConfig(AppConfig):
    name = "djaploy"
    verbose_name = "djaploy"
