"""Two views: one that writes nothing, one that creates one row."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import path

from bench.benchapp.models import Tracked, Untracked, row_values


def noop(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def create(request: HttpRequest, variant: str) -> HttpResponse:
    model = Tracked if variant == "tracked" else Untracked
    with transaction.atomic():
        model.objects.create(
            owner_id=int(request.POST["owner"]), **row_values(int(request.POST["i"]))
        )
    return HttpResponse("created", status=201)


urlpatterns = [
    path("noop/", noop),
    path("create/<str:variant>/", create),
]
