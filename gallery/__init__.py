"""Glasshouse's Django app: upload form, build pages, moderation admin and the content origin.

Imports flow one way (DESIGN.md): ``worker_shell -> gallery -> builder``. This package
enqueues builds by task name (``gallery.services.queue``) and never imports ``worker_shell``.
"""
