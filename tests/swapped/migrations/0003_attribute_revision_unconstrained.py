import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('swapped', '0002_generic_references_unconstrained'),
    ]

    operations = [
        migrations.AlterField(
            model_name='customattributedelta',
            name='revision',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='attribute_deltas', to=settings.REVY_REVISION_MODEL),
        ),
    ]
