"""Glasshouse bundle builder: plain Python, no Django, no Celery.

Takes paths and plain values and returns plain values, so every step can be
tested on its own. ``director.BuildDirector`` runs the whole build, phase by phase,
calling one module per step (``sqlite_check``, ``wheels``, ``compat``, ``bundle``,
``gzip_copies``, ``brotli_copies``, ``manifest``, ``download``, ``storage``, ...).
"""
