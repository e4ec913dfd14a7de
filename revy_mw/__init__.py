"""Request middleware for revy: one tracking context per request.

``RevyMiddleware`` is imported lazily, so listing ``"revy_mw"`` in
``INSTALLED_APPS`` never imports models before the app registry is ready.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from revy_mw.middleware import RevyMiddleware

__all__ = ["RevyMiddleware"]


def __getattr__(name: str) -> Any:
    if name == "RevyMiddleware":
        from revy_mw.middleware import RevyMiddleware

        return RevyMiddleware
    raise AttributeError(f"module 'revy_mw' has no attribute {name!r}")
