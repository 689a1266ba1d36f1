"""The audit log refuses UPDATE and DELETE in the database; the "Moderators" group.

Moderators are staff users in the group: they can see galleries, builds, reports and the
audit log, and act through the moderation actions (``gallery.moderate_gallery``); they
cannot change a gallery's fields (no ``change_gallery``), so plugins and metadata are out
of their reach.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MODERATOR_PERMISSIONS = (
    "view_gallery",
    "moderate_gallery",
    "view_build",
    "view_report",
    "view_auditevent",
    "view_publisher",
)

POSTGRES_TRIGGER = """
CREATE OR REPLACE FUNCTION gallery_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'gallery_auditevent is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER gallery_auditevent_append_only
    BEFORE UPDATE OR DELETE ON gallery_auditevent
    FOR EACH ROW EXECUTE FUNCTION gallery_auditevent_append_only();
"""
POSTGRES_DROP = """
DROP TRIGGER IF EXISTS gallery_auditevent_append_only ON gallery_auditevent;
DROP FUNCTION IF EXISTS gallery_auditevent_append_only();
"""
# SQLite (the embedded default of `make run`) refuses UPDATE only: its TRUNCATE is a DELETE,
# so a DELETE trigger would also break `manage.py flush`. PostgreSQL's TRUNCATE fires no row trigger.
SQLITE_TRIGGERS = (
    "CREATE TRIGGER gallery_auditevent_no_update BEFORE UPDATE ON gallery_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'gallery_auditevent is append-only'); END;",
)
SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS gallery_auditevent_no_update;",
    "DROP TRIGGER IF EXISTS gallery_auditevent_no_delete;",
)


def add_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_TRIGGER)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_TRIGGERS:
            schema_editor.execute(statement)


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_DROP)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_DROP:
            schema_editor.execute(statement)


def add_moderators_group(apps, schema_editor):
    # Permissions are normally created after all migrations (post_migrate); make them now.
    app_config = apps.get_app_config("gallery")
    app_config.models_module = True  # the migration state's stub has none; create_permissions needs it set
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="Moderators")
    group.permissions.set(
        Permission.objects.filter(content_type__app_label="gallery", codename__in=MODERATOR_PERMISSIONS)
    )


def remove_moderators_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="Moderators").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("gallery", "0004_accounts_and_moderation"),
    ]

    operations = [
        migrations.RunPython(add_triggers, drop_triggers),
        migrations.RunPython(add_moderators_group, remove_moderators_group),
    ]
