from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from revy_core.models import CASCADE, SET, SET_DEFAULT, SET_NULL


class Organization(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Account(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=CASCADE
    )
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=SET_NULL
    )
    name = models.CharField(max_length=100)
    balance = models.DecimalField(max_digits=12, decimal_places=2, default=0)

    def __str__(self) -> str:
        return self.name


class Transaction(models.Model):
    account = models.ForeignKey(Account, on_delete=CASCADE, related_name="transactions")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    exchange_rate = models.DecimalField(max_digits=12, decimal_places=4, default=1)
    local_amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    note = models.TextField(blank=True, default="")

    def __str__(self) -> str:
        return f"{self.amount} on {self.account_id}"


def default_category() -> int:
    return 0


class Comment(models.Model):
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.CASCADE
    )
    text = models.TextField(blank=True, default="")
    is_marked_as_spam = models.BooleanField(default=False)
    reviewer = models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        on_delete=SET(None),
        related_name="reviewed_comments",
    )
    category = models.IntegerField(default=0)
    category_owner = models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        default=None,
        on_delete=SET_DEFAULT,
        related_name="categorised_comments",
    )

    def __str__(self) -> str:
        return self.text


class Everything(models.Model):
    """One of each field type history must bring back."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    char = models.CharField(max_length=50, blank=True, default="")
    text = models.TextField(blank=True, default="")
    integer = models.IntegerField(null=True, blank=True)
    big = models.BigIntegerField(null=True, blank=True)
    flag = models.BooleanField(default=False)
    maybe = models.BooleanField(null=True, blank=True)
    decimal = models.DecimalField(max_digits=14, decimal_places=4, null=True)
    number = models.FloatField(null=True, blank=True)
    day = models.DateField(null=True, blank=True)
    moment = models.DateTimeField(null=True, blank=True)
    clock = models.TimeField(null=True, blank=True)
    span = models.DurationField(null=True, blank=True)
    token = models.UUIDField(null=True, blank=True)
    data = models.JSONField(null=True, blank=True)
    blob = models.BinaryField(null=True, blank=True)
    email = models.EmailField(blank=True, default="")
    slug = models.SlugField(blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.SET_NULL
    )

    def __str__(self) -> str:
        return str(self.pk)


class Profile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=CASCADE)
    secret = models.CharField(max_length=100, blank=True, default="")
    cache = models.TextField(blank=True, default="")
    bio = models.TextField(blank=True, default="")

    def __str__(self) -> str:
        return f"Profile of {self.user_id}"


class Place(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Restaurant(Place):
    serves_pizza = models.BooleanField(default=False)


class PlaceProxy(Place):
    class Meta:
        proxy = True


class Untracked(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Post(models.Model):
    """The seed README's example of revy's ``CASCADE``."""

    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=CASCADE)
    title = models.CharField(max_length=100, blank=True, default="")

    def __str__(self) -> str:
        return self.title


class Label(models.Model):
    name = models.CharField(max_length=50, unique=True)

    def __str__(self) -> str:
        return self.name


class Article(models.Model):
    """Many-to-many relations: an auto-created through table and a custom one."""

    title = models.CharField(max_length=100, blank=True, default="")
    labels = models.ManyToManyField(Label, blank=True, related_name="articles")
    members = models.ManyToManyField(
        Organization, through="ArticleMember", blank=True, related_name="articles"
    )

    def __str__(self) -> str:
        return self.title


class ArticleMember(models.Model):
    article = models.ForeignKey(Article, on_delete=models.CASCADE)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    role = models.CharField(max_length=20, default="member")

    class Meta:
        unique_together = [("article", "organization")]

    def __str__(self) -> str:
        return f"{self.organization_id} in {self.article_id}"


class Code(models.Model):
    """A model whose primary key is a string the application chooses."""

    code = models.CharField(max_length=20, primary_key=True)
    name = models.CharField(max_length=100, blank=True, default="")

    def __str__(self) -> str:
        return self.code
