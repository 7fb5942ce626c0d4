"""The composition root: builds each function's service from settings, once per cold start.

Clients are created lazily on first use (never at import), so the local stack and tests can set
the environment first. ``reset()`` forgets them (tests with a fresh moto per test). Each factory
imports its own adapters and services, so a function's cold start loads only what it uses (track
never loads the journey engine); importing this module loads nothing beyond the standard library (not
boto3, not the settings and their models), so a handler that imports its factories stays cheap to import.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.service_resource import DynamoDBServiceResource

    from footprint.adapters.journey_catalog import DynamoJourneyCatalog
    from footprint.adapters.person_data import DynamoPersonData
    from footprint.adapters.sources import DynamoDBSourceDirectory
    from footprint.services.admin import JourneyAdmin
    from footprint.services.data_rights import DataRights
    from footprint.services.evaluate import EvaluateService
    from footprint.services.ingest import IngestService
    from footprint.services.onsite import OnsiteService
    from footprint.services.poison import PoisonQueue
    from footprint.services.sources import SourceAdmin
    from footprint.services.transactional import TransactionalSend
    from footprint.settings import Settings


def get_settings() -> Settings:
    from footprint.settings import get_settings as cached_settings

    return cached_settings()


def _client(service: str) -> Any:
    import boto3

    return boto3.client(service)  # type: ignore[call-overload]


class DeferredClient:
    """A boto3 client created the first time anything of it is looked up (a method, ``meta``). For the
    clients of effects: an event that changes no journey, most of them, makes DynamoDB calls only, so
    evaluate's cold start need not build its SQS and Scheduler clients (botocore loads each one's model)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client(), name)

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = _client(self.service)
            return self._client


@cache
def dynamodb() -> DynamoDBClient:
    client: DynamoDBClient = _client("dynamodb")
    return client


@cache
def dynamodb_resource() -> DynamoDBServiceResource:
    """For Powertools Parameters (sources, journeys), from the default session like the clients: a session of
    its own would load botocore's endpoint and service data a second time."""
    import boto3

    return boto3.resource("dynamodb")


@cache
def sqs() -> Any:
    return DeferredClient("sqs")


@cache
def scheduler() -> Any:
    return DeferredClient("scheduler")


@cache
def ingest_service() -> IngestService:
    """track's service: sources cached in the warm Lambda, one BatchWriteItem per request (plus, for a
    source with a daily quota, an UpdateItem of its counter every limit // 1000 events)."""
    from footprint.adapters.channels.public_urls import check_url_syntax
    from footprint.adapters.events_store import DynamoDBEventStore
    from footprint.adapters.quota_counter import DynamoDailyCounter
    from footprint.services.ingest import IngestService
    from footprint.services.quotas import SourceQuotas

    settings = get_settings()
    allow_loopback = settings.allow_loopback_destinations
    return IngestService(
        sources=source_directory(),
        store=DynamoDBEventStore(
            settings.events_table, retention_days=settings.event_retention_days, client=dynamodb()
        ),
        quotas=SourceQuotas(DynamoDailyCounter(dynamodb(), settings.config_table)),
        push_endpoint_check=lambda endpoint: check_url_syntax(endpoint, allow_loopback=allow_loopback),
    )


@cache
def source_directory() -> DynamoDBSourceDirectory:
    from footprint.adapters.sources import DynamoDBSourceDirectory

    settings = get_settings()
    return DynamoDBSourceDirectory(
        settings.config_table, max_age_seconds=settings.config_cache_seconds, resource=dynamodb_resource()
    )


@cache
def onsite_service() -> OnsiteService:
    """track's browser routes: the inbox is one GSI Query per profile, settings read cached journeys."""
    from footprint.adapters.outbox import DynamoOutbox
    from footprint.adapters.profiles_store import DynamoProfileStore
    from footprint.adapters.web_assets import PackagedWebAssets
    from footprint.services.onsite import OnsiteService

    settings = get_settings()
    return OnsiteService(
        sources=source_directory(),
        intake=ingest_service(),
        profiles=DynamoProfileStore(dynamodb(), settings.profiles_table),
        inbox=DynamoOutbox(dynamodb(), settings.messages_table, timedelta(days=settings.event_retention_days)),
        journeys=journey_catalog(),
        assets=PackagedWebAssets(),
        vapid_public_key=settings.vapid_public_key,
    )


@cache
def journey_catalog() -> DynamoJourneyCatalog:
    from footprint.adapters.journey_catalog import DynamoJourneyCatalog

    settings = get_settings()
    return DynamoJourneyCatalog(
        dynamodb(), settings.config_table, settings.config_cache_seconds, resource=dynamodb_resource()
    )


@cache
def journey_admin() -> JourneyAdmin:
    """The admin API's service. No cache: an admin reads what it just wrote."""
    from footprint.adapters.journey_catalog import DynamoJourneyCatalog
    from footprint.adapters.steps import DynamoStepReader
    from footprint.services.admin import JourneyAdmin

    settings = get_settings()
    return JourneyAdmin(
        DynamoJourneyCatalog(dynamodb(), settings.config_table, cache_seconds=0, resource=dynamodb_resource()),
        steps=DynamoStepReader(dynamodb(), settings.steps_table),
        unconfigured_channels=settings.unconfigured_channels(),
    )


@cache
def source_admin() -> SourceAdmin:
    """Write keys for the admin API (consistent reads: an admin reads what it just wrote)."""
    from footprint import clock
    from footprint.adapters.source_keys import DynamoSourceKeyStore
    from footprint.services.sources import SourceAdmin

    return SourceAdmin(DynamoSourceKeyStore(dynamodb(), get_settings().config_table), now=clock.now)


@cache
def data_rights() -> DataRights:
    """Export and deletion of one person's data, for the admin API."""
    from footprint import clock
    from footprint.adapters.person_data import DynamoDeletionLog
    from footprint.services.data_rights import DataRights

    settings = get_settings()
    log = DynamoDeletionLog(dynamodb(), settings.config_table)
    return DataRights(person_data(), log, now=clock.now)


@cache
def person_data() -> DynamoPersonData:
    """One person's items by key: data rights, and who a transactional message is for."""
    from footprint.adapters.person_data import DynamoPersonData

    settings = get_settings()
    return DynamoPersonData(
        dynamodb(),
        profiles_table=settings.profiles_table,
        events_table=settings.events_table,
        steps_table=settings.steps_table,
        messages_table=settings.messages_table,
        scheduler=scheduler() if settings.schedule_group else None,
        schedule_group=settings.schedule_group,
    )


@cache
def transactional_send() -> TransactionalSend:
    """POST /admin/messages: one message to one person now, through SendQueue."""
    from footprint import clock
    from footprint.adapters.outbox import DynamoOutbox
    from footprint.adapters.send_queue import SqsSendQueue
    from footprint.services.transactional import TransactionalSend

    settings = get_settings()
    people = person_data()
    outbox = DynamoOutbox(dynamodb(), settings.messages_table, timedelta(days=settings.event_retention_days))
    return TransactionalSend(
        people, outbox, SqsSendQueue(sqs(), settings.send_queue_url), now=clock.now, consent=settings.consent_policy
    )


@cache
def evaluate_service() -> EvaluateService:
    from aws_lambda_powertools import Metrics

    from footprint.adapters.enrollments_store import DynamoEnrollmentStore
    from footprint.adapters.events_store import DynamoDBEventStore
    from footprint.adapters.profiles_store import DynamoProfileStore
    from footprint.adapters.recent_events import DynamoRecentEvents
    from footprint.adapters.send_queue import SqsSendQueue
    from footprint.adapters.steps import DynamoStepLog
    from footprint.adapters.timers import SchedulerTimers
    from footprint.clock import current_clock
    from footprint.services.evaluate import EvaluateService
    from footprint.services.journeys import JourneyService
    from footprint.services.profiles import ProfileService
    from footprint.services.timeline import ProfileEvents

    settings = get_settings()
    clock = current_clock()
    store = DynamoProfileStore(dynamodb(), settings.profiles_table)
    timers = SchedulerTimers(
        scheduler(),
        sqs(),
        clock,
        schedule_group=settings.schedule_group,
        timers_queue_url=settings.timers_queue_url,
        timers_queue_arn=settings.timers_queue_arn,
        scheduler_role_arn=settings.scheduler_role_arn,
        dead_letter_arn=settings.scheduler_dead_letter_arn,
    )
    journeys = JourneyService(
        enrollments=DynamoEnrollmentStore(dynamodb(), settings.profiles_table),
        catalog=journey_catalog(),
        timers=timers,
        send_queue=SqsSendQueue(sqs(), settings.send_queue_url),
        profiles=store,
        # Metrics instances share one metric set per process: the handler's log_metrics publishes these.
        steps=DynamoStepLog(
            dynamodb(), settings.steps_table, timedelta(days=settings.event_retention_days), metrics=Metrics()
        ),
        recent_events=DynamoRecentEvents(dynamodb(), settings.profiles_table),
        # Outcomes of sends the engine skipped (message_suppressed), through EventsTable and back.
        consent=settings.consent_policy,
        outcomes=ProfileEvents(
            store,
            DynamoDBEventStore(settings.events_table, retention_days=settings.event_retention_days, client=dynamodb()),
        ),
    )
    return EvaluateService(profiles=ProfileService(store), profile_reader=store, journeys=journeys, clock=clock)


@cache
def poison_queue() -> PoisonQueue | None:
    """EvaluatePoisonQueue; None when no URL is configured (poison records are then retried as before)."""
    from footprint.adapters.poison_queue import SqsPoisonQueue

    url = get_settings().evaluate_poison_queue_url
    return SqsPoisonQueue(sqs(), url) if url else None


def reset() -> None:
    from footprint.settings import get_settings as cached_settings

    for factory in (
        dynamodb,
        dynamodb_resource,
        sqs,
        scheduler,
        ingest_service,
        source_directory,
        onsite_service,
        journey_catalog,
        journey_admin,
        source_admin,
        data_rights,
        person_data,
        transactional_send,
        evaluate_service,
        poison_queue,
        cached_settings,
    ):
        factory.cache_clear()
