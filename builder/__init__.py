"""Glasshouse bundle builder: plain Python, no Django, no Celery.

Takes paths and plain values and returns plain values, so every step can be
tested on its own. See ``bundle.build_bundle`` for the whole pipeline.
"""
