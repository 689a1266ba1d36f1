"""``Build.needs_review`` is replaced by ``Build.review`` (migration 0011)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("gallery", "0012_build_review_data")]

    operations = [migrations.RemoveField(model_name="build", name="needs_review")]
