from __future__ import annotations

from django.urls import path

from tests import mw_views as views

urlpatterns = [
    path("sync/write", views.sync_write),
    path("async/write", views.async_write),
    path("decorated/write", views.decorated_write),
    path("sync/read", views.sync_read),
    path("async/read", views.async_read),
    path("sync/probe", views.sync_probe),
    path("async/probe", views.async_probe),
    path("sync/fail", views.sync_fail),
    path("sync/swallow", views.sync_swallow),
    path("sync/stream", views.sync_stream),
    path("async/stream", views.async_stream),
    path("ninja/", views.api.urls),
]
