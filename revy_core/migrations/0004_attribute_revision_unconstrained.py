import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

REVISION_MODEL = getattr(settings, "REVY_REVISION_MODEL", "revy.Revision")


class Migration(migrations.Migration):
    """An attribute delta's revision is its parent's, which the database
    already checks through the parent: its own constraint is dropped."""

    dependencies = [
        ('revy', '0003_attribute_content_index_ends_with_the_key'),
    ]

    operations = [
        migrations.AlterField(
            model_name='attributedelta',
            name='revision',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='attribute_deltas', to=REVISION_MODEL),
        ),
    ]
