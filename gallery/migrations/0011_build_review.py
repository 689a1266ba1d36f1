"""Approval per build, the schema: ``Build.review``, ``approval``, ``reviewed_at``, ``reviewed_by``
and ``bundle_settings``. Migration 0012 fills them for existing builds, 0013 drops
``Build.needs_review``. (Three migrations, three transactions: PostgreSQL refuses to index a
table that a data change in the same transaction left with pending trigger events.)
"""

from django.conf import settings
from django.db import migrations, models

class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("gallery", "0010_build_warnings"),
    ]

    operations = [
        migrations.AddField(
            model_name="build",
            name="bundle_settings",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="build",
            name="review",
            field=models.CharField(
                choices=[("pending", "Waiting for review"), ("approved", "Approved"), ("rejected", "Rejected")],
                db_index=True,
                default="pending",
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="build",
            name="approval",
            field=models.CharField(
                blank=True,
                choices=[
                    ("moderator", "Approved by a moderator after review"),
                    ("trusted", "Published by a trusted publisher or staff"),
                    ("operator", "Published by the operator (manage.py publish)"),
                    ("automatic", "Approved automatically (GALLERY_AUTO_APPROVE)"),
                    ("rebuild", "A moderator's rebuild of an approved build, with its source and settings"),
                    ("migrated", "Served before approval was recorded per build (migration 0011)"),
                ],
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="build",
            name="reviewed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="build",
            name="reviewed_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]
