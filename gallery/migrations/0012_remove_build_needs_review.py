"""``Build.needs_review`` is replaced by ``Build.review`` (migration 0011)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("gallery", "0011_build_review")]

    operations = [migrations.RemoveField(model_name="build", name="needs_review")]
