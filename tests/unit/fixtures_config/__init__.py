"""Fixtures for the config and inventory tests."""
