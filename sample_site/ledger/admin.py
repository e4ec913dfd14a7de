"""The ledger in Django's admin, with revy's history on every object.

Each model's "History" page shows its revisions (when, who, message) and what
changed in each (field: old → new), also for deleted objects; a deleted
object has a Restore button. From any revision, "changes since" shows the
field-by-field difference between two points of the object's history
(``?start=`` and ``?end=``: revision ids or ISO 8601 times), computed by
``revy_core.diff``. The change list links to the deleted objects.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db import transaction as db
from django.forms import ModelForm
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST

from revy_core.models import ObjectDelta, ObjectSnapshot
from sample_site.ledger import history, services
from sample_site.ledger.errors import LedgerError
from sample_site.ledger.models import (
    Account,
    ApiToken,
    Membership,
    Organization,
    Transaction,
)

ACTION_LABELS = {"create": "created", "update": "changed", "delete": "deleted"}


def _describe(instance: models.Model) -> str:
    try:
        return str(instance)
    except Exception:  # a related object that no longer exists
        return f"{instance._meta.verbose_name} {instance.pk}"


class _Values:
    """Shows stored values as people read them: related objects by name."""

    def __init__(self, model: type[models.Model]) -> None:
        self.model = model
        self._cache: dict[tuple[str, Any], str] = {}

    def __call__(self, field_name: str, value: Any) -> str:
        if value is None:
            return ""
        try:
            field = self.model._meta.get_field(field_name)
        except Exception:
            return str(value)
        if field.is_relation and field.related_model is not None:
            key = (field_name, value)
            if key not in self._cache:
                name = history.display_name(field.related_model, value)
                self._cache[key] = f"{name} #{value}"
            return self._cache[key]
        choices = getattr(field, "flatchoices", None)
        if choices:
            return str(dict(choices).get(value, value))
        return str(value)


def _point(value: str | None) -> history.Point | None:
    """A revision id or an ISO 8601 time from the query string."""
    if not value:
        return None
    if value.isdigit():
        return int(value)
    try:
        at = parse_datetime(value)
    except ValueError:
        at = None
    if at is None:
        raise Http404(f"{value!r} is neither a revision id nor an ISO 8601 time.")
    return at if timezone.is_aware(at) else timezone.make_aware(at)


def _point_name(state: history.State, side: str) -> str:
    if state.revision_id is None:
        return "before its history" if side == "start" else "its latest state"
    assert isinstance(state.created_at, datetime.datetime)
    when = timezone.localtime(state.created_at).strftime("%Y-%m-%d %H:%M:%S")
    return f"revision {state.revision_id} ({when})"


class HistoryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """A ModelAdmin whose History page and deleted-objects page read revy."""

    object_history_template = "admin/ledger/object_history.html"
    change_list_template = "admin/ledger/change_list.html"

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "deleted/",
                self.admin_site.admin_view(self.deleted_view),
                name="{}_{}_deleted".format(*info),
            ),
            path(
                "<path:object_id>/restore/",
                self.admin_site.admin_view(self.restore_view),
                name="{}_{}_restore".format(*info),
            ),
            *super().get_urls(),
        ]

    def _pk(self, object_id: str) -> Any:
        pk_field = self.opts.pk
        assert pk_field is not None
        try:
            return pk_field.to_python(unquote(object_id))
        except ValidationError:
            raise Http404(f"{object_id!r} is not a valid id.") from None

    def _url(self, name: str, *args: Any) -> str:
        info = self.opts.app_label, self.opts.model_name
        return reverse(f"admin:{info[0]}_{info[1]}_{name}", args=args)

    def history_view(
        self,
        request: HttpRequest,
        object_id: str,
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        pk = self._pk(object_id)
        obj = self.model._default_manager.filter(pk=pk).first()
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        entries = history.object_history(self.model, pk)
        if obj is None and not entries:
            raise Http404(
                f"There is no {self.opts.verbose_name} {pk}, nor any history."
            )
        values = _Values(self.model)
        rows = []
        for entry in reversed(entries):
            changes = []
            for change in entry.changes:
                if change.field == self.opts.pk.name and entry.action != "update":
                    continue
                own = change.actor == entry.actor
                changes.append(
                    {
                        "field": change.field,
                        "label": change.label,
                        "old": values(change.field, change.old),
                        "new": values(change.field, change.new),
                        "old_empty": change.old is None,
                        "new_empty": change.new is None,
                        "actor": None if own else change.actor,
                        "description": (
                            change.description
                            if change.description != entry.description
                            else ""
                        ),
                    }
                )
            rows.append(
                {
                    "entry": entry,
                    "action_label": ACTION_LABELS.get(entry.action, entry.action),
                    "changes": changes,
                }
            )
        deleted = obj is None
        name = _describe(obj) if obj is not None else self._deleted_name(pk)
        comparison = None
        if "start" in request.GET or "end" in request.GET:
            comparison = self._comparison(
                pk, _point(request.GET.get("start")), _point(request.GET.get("end"))
            )
        context = {
            **self.admin_site.each_context(request),
            "title": f"History: {name}",
            "subtitle": None,
            "module_name": str(self.opts.verbose_name_plural).capitalize(),
            "object": obj,
            "object_id": pk,
            "object_name": name,
            "opts": self.opts,
            "rows": rows,
            "comparison": comparison,
            "deleted": deleted,
            "deleted_entry": entries[-1] if deleted and entries else None,
            "can_restore": deleted and self.has_add_permission(request),
            "restore_url": self._url("restore", quote(pk)),
            "deleted_url": self._url("deleted"),
            "preserved_filters": self.get_preserved_filters(request),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.object_history_template, context)

    def _comparison(
        self, pk: Any, start: history.Point | None, end: history.Point | None
    ) -> dict[str, Any]:
        """What changed between two points, from ``revy_core.diff``."""
        before, after, difference = history.difference(self.model, pk, start, end)
        values = _Values(self.model)
        changes = []
        for field, (old, new) in difference.changes.items():
            try:
                label = str(self.opts.get_field(field).verbose_name)  # type: ignore[union-attr]
            except Exception:
                label = field
            changes.append(
                {
                    "field": field,
                    "label": label,
                    "old": values(field, old),
                    "new": values(field, new),
                    "old_empty": old is None,
                    "new_empty": new is None,
                }
            )
        return {
            "start": before,
            "end": after,
            "start_name": _point_name(before, "start"),
            "end_name": _point_name(after, "end"),
            "existence": before.exists != after.exists,
            "changes": changes,
        }

    def _deleted_name(self, pk: Any) -> str:
        deletion = history.last_deletion(self.model, pk)
        if deletion is None:
            return f"{self.opts.verbose_name} {pk}"
        return _describe(deletion.snapshot)

    def deleted_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        existing = {
            str(pk) for pk in self.model._default_manager.values_list("pk", flat=True)
        }
        deltas = (
            ObjectDelta.objects.filter(
                content_type=ContentType.objects.get_for_model(self.model),
                action=ObjectDelta.ACTION_DELETE,
            )
            .select_related("revision")
            .annotate(snapshot=ObjectSnapshot(self.model))
            .order_by("-pk")
        )
        seen: set[str] = set()
        items = []
        loaded = list(deltas)
        actor_of = history.actors(loaded)
        for delta in loaded:
            if delta.content_id in existing or delta.content_id in seen:
                continue
            seen.add(delta.content_id)
            items.append(
                {
                    "id": delta.content_id,
                    "name": _describe(delta.snapshot),
                    "delta": delta,
                    "actor": actor_of(delta),
                    "history_url": self._url("history", quote(delta.content_id)),
                    "restore_url": self._url("restore", quote(delta.content_id)),
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Deleted {self.opts.verbose_name_plural}",
            "subtitle": None,
            "module_name": str(self.opts.verbose_name_plural).capitalize(),
            "opts": self.opts,
            "items": items,
            "can_restore": self.has_add_permission(request),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/ledger/deleted_objects.html", context)

    @method_decorator(require_POST)
    def restore_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        pk = self._pk(object_id)
        try:
            restored = history.restore(self.model, pk)
        except LedgerError as error:
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(self._url("history", quote(pk)))
        others = len(restored) - 1
        text = f"The {self.opts.verbose_name} “{_describe(restored[0])}” was restored"
        if others:
            text += f", with {others} related object{'s' if others > 1 else ''}"
        self.message_user(request, text + ".", messages.SUCCESS)
        return HttpResponseRedirect(self._url("change", quote(pk)))


@admin.register(Organization)
class OrganizationAdmin(HistoryAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name", "slug"]


@admin.register(Membership)
class MembershipAdmin(HistoryAdmin):
    list_display = ["user", "organization", "role"]
    list_filter = ["organization", "role"]


@admin.register(Account)
class AccountAdmin(HistoryAdmin):
    list_display = ["name", "organization", "currency", "manager", "balance"]
    list_filter = ["organization", "currency"]
    readonly_fields = ["balance"]
    search_fields = ["name"]

    def delete_model(self, request: HttpRequest, obj: Account) -> None:
        services.delete_account(obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        with db.atomic():
            for account in queryset:
                services.delete_account(account)


@admin.register(Transaction)
class TransactionAdmin(HistoryAdmin):
    list_display = [
        "description",
        "account",
        "amount",
        "currency",
        "exchange_rate",
        "local_amount",
        "booked_on",
    ]
    list_filter = ["account__organization", "currency"]
    readonly_fields = ["local_amount"]
    search_fields = ["description"]

    def save_model(
        self, request: HttpRequest, obj: Transaction, form: ModelForm[Any], change: bool
    ) -> None:
        services.save_transaction(obj)

    def delete_model(self, request: HttpRequest, obj: Transaction) -> None:
        services.delete_transaction(obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        with db.atomic():
            for transaction in queryset:
                services.delete_transaction(transaction)


admin.site.unregister(User)


@admin.register(User)
class UserHistoryAdmin(HistoryAdmin, UserAdmin):  # type: ignore[type-arg]
    """Django's user admin, with revy's history (password hashes are masked)."""


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Tokens are issued by ``ApiToken.objects.issue``; only the digest is kept."""

    list_display = ["name", "user", "created_at"]
    readonly_fields = ["digest", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
