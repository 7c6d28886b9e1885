"""djaploy: deploy Django projects to your own Linux VPS hosts."""

__version__ = "2.0.0.dev0"
