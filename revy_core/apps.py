from __future__ import annotations

from django.apps import AppConfig


class RevyConfig(AppConfig):
    name = "revy_core"
    label = "revy"
    verbose_name = "Revision history"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from revy_core import checks, deletion, tracking

        checks.register()
        tracking.install()
        deletion.install()
