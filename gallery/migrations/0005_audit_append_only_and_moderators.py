"""The audit log refuses UPDATE and DELETE in the database.

(The "Moderators" group is made after every migrate and flush: ``gallery.apps.ensure_moderators_group``.)
"""

from django.db import migrations

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


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("gallery", "0004_accounts_and_moderation"),
    ]

    operations = [
        migrations.RunPython(add_triggers, drop_triggers),
    ]
