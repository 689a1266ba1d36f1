"""The suite's shared fixtures and hooks live in pytest plugins under ``tests/plugins/``."""

pytest_plugins = ["tests.plugins.builds"]
