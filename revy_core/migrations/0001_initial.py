
import django.core.serializers.json
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


REVISION_MODEL = getattr(settings, "REVY_REVISION_MODEL", "revy.Revision")
OBJECT_DELTA_MODEL = getattr(settings, "REVY_OBJECT_DELTA_MODEL", "revy.ObjectDelta")


def _swapped_dependencies():
    return [
        migrations.swappable_dependency(label)
        for label in (REVISION_MODEL, OBJECT_DELTA_MODEL)
        if not label.lower().startswith("revy.")
    ]


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        *_swapped_dependencies(),
    ]

    operations = [
        migrations.CreateModel(
            name='Revision',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('description', models.TextField(blank=True, default='')),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
            ],
            options={
                'db_table': 'revy_revision',
                'abstract': False,
                'swappable': 'REVY_REVISION_MODEL',
            },
        ),
        migrations.CreateModel(
            name='ObjectDelta',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('actor_id', models.CharField(blank=True, max_length=255, null=True)),
                ('action', models.CharField(max_length=16)),
                ('description', models.TextField(blank=True, default='')),
                ('content_id', models.CharField(max_length=255)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('actor_type', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='contenttypes.contenttype')),
                ('content_type', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='contenttypes.contenttype')),
                ('revision', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='object_deltas', to=REVISION_MODEL)),
            ],
            options={
                'db_table': 'revy_object_delta',
                'abstract': False,
                'swappable': 'REVY_OBJECT_DELTA_MODEL',
            },
        ),
        migrations.CreateModel(
            name='AttributeDelta',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('actor_id', models.CharField(blank=True, max_length=255, null=True)),
                ('action', models.CharField(max_length=16)),
                ('description', models.TextField(blank=True, default='')),
                ('content_id', models.CharField(max_length=255)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('field_name', models.CharField(max_length=255)),
                ('old_value', models.JSONField(blank=True, encoder=django.core.serializers.json.DjangoJSONEncoder, null=True)),
                ('new_value', models.JSONField(blank=True, encoder=django.core.serializers.json.DjangoJSONEncoder, null=True)),
                ('actor_type', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='contenttypes.contenttype')),
                ('content_type', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='contenttypes.contenttype')),
                ('parent', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='attribute_deltas', to=OBJECT_DELTA_MODEL)),
                ('revision', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='attribute_deltas', to=REVISION_MODEL)),
            ],
            options={
                'db_table': 'revy_attribute_delta',
                'abstract': False,
                'swappable': 'REVY_ATTRIBUTE_DELTA_MODEL',
            },
        ),
        migrations.AddIndex(
            model_name='objectdelta',
            index=models.Index(fields=['content_type', 'content_id', 'id'], name='revy_od_content_idx'),
        ),
        migrations.AddIndex(
            model_name='objectdelta',
            index=models.Index(fields=['actor_type', 'actor_id'], name='revy_od_actor_idx'),
        ),
        migrations.AddIndex(
            model_name='attributedelta',
            index=models.Index(fields=['content_type', 'content_id', 'field_name', 'parent'], name='revy_ad_content_idx'),
        ),
        migrations.AddIndex(
            model_name='attributedelta',
            index=models.Index(fields=['actor_type', 'actor_id'], name='revy_ad_actor_idx'),
        ),
    ]
