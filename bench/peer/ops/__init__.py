"""The project app that holds the deployment (djaploy 1.x looks for <app>/infra/ in INSTALLED_APPS)."""
