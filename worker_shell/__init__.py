"""Celery shell around ``builder``: the app and thin tasks (DESIGN.md, "Parts")."""
