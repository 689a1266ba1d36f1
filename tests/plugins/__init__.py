"""The test suite's pytest plugins, one module per concern, registered by ``tests/conftest.py``."""
