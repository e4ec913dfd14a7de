from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('revy', '0002_generic_references_unconstrained'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='attributedelta',
            name='revy_ad_content_idx',
        ),
        migrations.AddIndex(
            model_name='attributedelta',
            index=models.Index(fields=['content_type', 'content_id', 'field_name', 'parent', 'id'], name='revy_ad_content_idx'),
        ),
    ]
