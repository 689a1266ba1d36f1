"""Operations on galleries and builds, one module per domain: the views, admin actions, commands and
tasks all call these, so each rule lives in one place.

- ``uploads``: checking an upload and storing it privately;
- ``galleries``: a new gallery, its settings, a new version;
- ``publishing``: who vouches for a build, queueing, rebuilding, putting a finished build live;
- ``moderation``: approve the build reviewed, reject, take down, delete, trust;
- ``removal``: removing files after a decision; ``garbage``: daily garbage collection;
- ``reports``: readers' reports and holds; ``quotas``: publishers' quotas;
- ``ownership``: management links and claims; ``audit``: the audit log;
- ``queue``: sending tasks to the worker by name; ``recovery``: builds a worker lost.

Errors meant for people carry their message in ``args[0]`` (``uploads.UploadRejected`` and its
subclasses, ``uploads.StorageUnavailable``, ``moderation.InvalidTransition``).
"""
