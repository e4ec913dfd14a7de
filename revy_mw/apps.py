from __future__ import annotations

from django.apps import AppConfig


class RevyMiddlewareConfig(AppConfig):
    name = "revy_mw"
    label = "revy_mw"
    verbose_name = "Revision history middleware"

    def ready(self) -> None:
        from revy_mw import checks

        checks.register()
