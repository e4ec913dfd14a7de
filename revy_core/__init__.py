"""Revision control for Django models."""

from __future__ import annotations

from revy_core.context import (
    Context,
    ContextError,
    ContextExitError,
    LazyActor,
    LazyRevision,
    NoContextIsActive,
)

__all__ = [
    "Context",
    "ContextError",
    "ContextExitError",
    "LazyActor",
    "LazyRevision",
    "NoContextIsActive",
]
