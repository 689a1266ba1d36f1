"""Moderation in the Django admin: the queue, galleries, builds, reports, publishers, the audit log.

Every decision calls ``gallery.services`` (approve, reject, take down, delete, trust,
rebuild); the admin holds no rules of its own and edits no moderation field directly.
Galleries are read-only here: their state changes only through the actions, offered on
the change lists (bulk) and as buttons on each gallery's page.

Moderators are staff users in the "Moderators" group (``gallery.apps.ensure_moderators_group``):
they can view galleries, builds, reports, publishers and the audit log, and act with the
``gallery.moderate_gallery`` permission. Deleting a gallery (a tombstone) needs
``gallery.delete_gallery``; the audit log cannot be changed by anyone.

Django's admin autodiscovery imports this package; importing the modules registers their admins.
"""

from gallery.admin import builds, galleries, queue, records

__all__ = ["builds", "galleries", "queue", "records"]
