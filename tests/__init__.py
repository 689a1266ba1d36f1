"""Glasshouse's test suite: a package, so its plugins and helpers import as ``tests.plugins...`` and ``tests.support...``."""
