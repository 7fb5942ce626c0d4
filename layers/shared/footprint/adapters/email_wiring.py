"""Composition root of the two email functions (EmailLinksFunction, EmailFeedbackFunction).

Like ``footprint.adapters.wiring``: nothing is read or created at import (and nothing beyond the standard
library is imported); settings are read and boto3 clients created on first use, then cached per cold
start. ``reset()`` forgets them (tests).
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING

from footprint.adapters.wiring import get_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from footprint.services.email_feedback import EmailFeedbackService
    from footprint.services.email_links import EmailLinkService
    from footprint.services.timeline import ProfileEvents


@cache
def dynamodb() -> DynamoDBClient:
    import boto3

    return boto3.client("dynamodb")


def profile_events() -> ProfileEvents:
    from footprint.adapters.events_store import DynamoDBEventStore
    from footprint.adapters.profiles_store import DynamoProfileStore
    from footprint.services.timeline import ProfileEvents

    settings = get_settings()
    client = dynamodb()
    return ProfileEvents(
        DynamoProfileStore(client, settings.profiles_table),
        DynamoDBEventStore(settings.events_table, retention_days=settings.event_retention_days, client=client),
    )


@cache
def email_link_service() -> EmailLinkService:
    import boto3
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from footprint.adapters.channels.secrets import SecretKey
    from footprint.adapters.outbox import DynamoOutbox
    from footprint.clock import current_clock
    from footprint.services.email_links import EmailLinkService

    settings = get_settings()
    secrets = SecretsProvider(boto3_client=boto3.client("secretsmanager"))
    return EmailLinkService(
        key=SecretKey(secrets, settings.email_link_secret_name),
        events=profile_events(),
        messages=DynamoOutbox(dynamodb(), settings.messages_table, timedelta(days=settings.event_retention_days)),
        clock=current_clock(),
    )


@cache
def email_feedback_service() -> EmailFeedbackService:
    from footprint.clock import current_clock
    from footprint.services.email_feedback import EmailFeedbackService

    return EmailFeedbackService(profile_events(), current_clock())


def reset() -> None:
    from footprint.settings import get_settings as cached_settings

    for factory in (dynamodb, email_link_service, email_feedback_service, cached_settings):
        factory.cache_clear()
