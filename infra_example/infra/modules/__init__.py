"""The ledger's own djaploy modules, named in config.py's `modules` as infra.modules.<file>.<Class>."""
