"""The send function's composition root: its service, built from settings once per cold start.

Like ``footprint.adapters.wiring``: nothing is read or created at import (and nothing beyond the
standard library and Powertools' metrics is imported); settings are read and boto3 clients created on
the first call, then cached. ``reset()`` forgets everything (tests).

Channels are configured as follows (a channel that is not configured records "skipped" with
"channel not configured"):
- onsite_form, onsite_push, webhook: always (webhooks signed with WEBHOOK_SECRET_NAME when set, or
  with footprint/webhooks/<name> for a step whose content names ``secret``).
- email: SENDER_EMAIL (a verified SES identity), SES_CONFIGURATION_SET, and for marketing email
  EMAIL_LINK_SECRET_NAME + PUBLIC_API_URL (signed unsubscribe and click links).
- web_push: VAPID_SECRET_NAME (see footprint.adapters.channels.web_push).
- sms: SMS_PROVIDER_URL, optional SMS_PROVIDER_SECRET_NAME (see channels.sms).
- zalo_zns: ZALO_ZNS_SECRET_NAME (straight to Zalo, optional ZALO_ZNS_MODE=development), else
  ZALO_ZNS_PROVIDER_URL and optional ZALO_ZNS_PROVIDER_SECRET_NAME (a relay; see channels.zalo_zns).

Each configured channel's sender is built the first time a message goes out on it (:class:`LazyChannels`):
its adapter module is imported and its client created then. A web push loads pywebpush (and the aiohttp
it imports at module level), an email the MIME stack and the SES client; a container that only ever
sends onsite messages loads neither.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from footprint.adapters.wiring import get_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from botocore.config import Config
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

    from footprint.adapters.channels.sms import TokenSource
    from footprint.adapters.send_queue import SqsRetryLater
    from footprint.email_links import LinkSigner
    from footprint.models.messages import MessageChannel
    from footprint.services.send import ChannelSender, DeliveryGuard, SendService
    from footprint.settings import Settings

# Powertools keeps a completed delivery's result this long; the outbox row guards beyond that.
IDEMPOTENCY_EXPIRY = timedelta(days=7)
# A stable prefix (instead of the module and function name) keeps records valid across refactors.
IDEMPOTENCY_KEY_PREFIX = "footprint-send"


@cache
def _client_config() -> Config:
    """Fail fast inside a 30 s Lambda; botocore's standard mode retries throttling with backoff."""
    from botocore.config import Config

    return Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})


def _client(service: str) -> Any:
    import boto3

    return boto3.client(service, config=_client_config())  # type: ignore[call-overload]


@cache
def dynamodb() -> DynamoDBClient:
    client: DynamoDBClient = _client("dynamodb")
    return client


@cache
def sesv2() -> SESV2Client:
    client: SESV2Client = _client("sesv2")
    return client


@cache
def sns() -> SNSClient:
    client: SNSClient = _client("sns")
    return client


@cache
def sqs() -> SQSClient:
    client: SQSClient = _client("sqs")
    return client


@cache
def retry_later() -> SqsRetryLater:
    from footprint.adapters.send_queue import SqsRetryLater

    return SqsRetryLater(sqs(), get_settings().send_queue_url)


@cache
def secrets() -> SecretsProvider:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    client: SecretsManagerClient = _client("secretsmanager")
    return SecretsProvider(boto3_client=client)


@cache
def idempotency_config() -> IdempotencyConfig:
    """The handler registers each invocation's Lambda context here, so an attempt cut short by the
    Lambda timeout does not block its retry until the record expires."""
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    return IdempotencyConfig(
        event_key_jmespath="idempotency_key",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=int(IDEMPOTENCY_EXPIRY.total_seconds()),
    )


def idempotency_guard(settings: Settings) -> DeliveryGuard:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer

    from footprint.models.messages import DeliveryRecord

    persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=dynamodb())
    guard: DeliveryGuard = idempotent_function(
        data_keyword_argument="message",
        persistence_store=persistence,
        config=idempotency_config(),
        output_serializer=PydanticSerializer(DeliveryRecord),
        key_prefix=IDEMPOTENCY_KEY_PREFIX,
    )
    return guard


class PowertoolsDeliveryMetrics:
    """Counts per outcome (MessagesSent, MessagesSkipped, MessagesFailed, MessagesDuplicate, ...),
    published once per invocation by the handler's ``log_metrics``. No channel dimension: each
    dimension combination is a billed custom metric in the user's account; the outbox rows answer
    "which channel works" for reports."""

    def __init__(self) -> None:
        # Metrics instances share one metric set per process, so this adds to the handler's.
        self.metrics = Metrics()

    def count(self, outcome: str, channel: MessageChannel) -> None:
        name = "Messages" + "".join(part.capitalize() for part in outcome.split("_"))
        self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


class LazyChannels(Mapping["MessageChannel", "ChannelSender"]):
    """The configured channels, each sender built the first time it is looked up (then kept for the life of
    the container). Its keys are known at once, so what is configured is answered without building anything."""

    def __init__(self, builders: Mapping[MessageChannel, Callable[[], ChannelSender]]) -> None:
        self._builders = dict(builders)
        self._built: dict[MessageChannel, ChannelSender] = {}
        self._lock = threading.Lock()

    def __getitem__(self, channel: MessageChannel) -> ChannelSender:
        if channel not in self._built:
            build = self._builders[channel]  # KeyError: not configured
            with self._lock:
                if channel not in self._built:
                    self._built[channel] = build()
        return self._built[channel]

    def __iter__(self) -> Iterator[MessageChannel]:
        return iter(self._builders)

    def __len__(self) -> int:
        return len(self._builders)

    def built(self) -> frozenset[MessageChannel]:
        """The channels whose sender exists by now."""
        return frozenset(self._built)


def channels(settings: Settings) -> Mapping[MessageChannel, ChannelSender]:
    builders: dict[MessageChannel, Callable[[], ChannelSender]] = {
        "onsite_form": _onsite_sender,
        "onsite_push": _onsite_sender,
        "webhook": lambda: _webhook_sender(settings),
    }
    if settings.sender_email:
        builders["email"] = lambda: _email_sender(settings)
    if settings.vapid_secret_name:
        builders["web_push"] = lambda: _web_push_sender(settings)
    if settings.sms_provider == "sns" or settings.sms_provider_url:
        builders["sms"] = lambda: _sms_sender(settings)
    if settings.zalo_zns_secret_name or settings.zalo_zns_provider_url:
        builders["zalo_zns"] = lambda: _zalo_zns_sender(settings)
    return LazyChannels(builders)


@cache
def _onsite_sender() -> ChannelSender:
    from footprint.adapters.channels.onsite import OnsiteInboxSender

    return OnsiteInboxSender()


def _webhook_sender(settings: Settings) -> ChannelSender:
    from footprint.adapters.channels.webhook import WebhookSender
    from footprint.clock import current_clock

    return WebhookSender(
        current_clock(),
        _secret_field(settings.webhook_secret_name, "signing_secret"),
        named_secret=journey_webhook_secret,
        allow_loopback=settings.allow_loopback_destinations,
    )


def journey_webhook_secret(name: str) -> str | None:
    """The signing_secret of the secret a webhook step names (footprint/webhooks/<name>); the provider
    caches it per container like the stack's secrets."""
    from footprint.adapters.channels.webhook import JOURNEY_SECRETS_PREFIX

    return _secret_field(JOURNEY_SECRETS_PREFIX + name, "signing_secret")()


def _email_sender(settings: Settings) -> ChannelSender:
    from footprint.adapters.channels.email import SesEmailSender

    return SesEmailSender(
        sesv2(),
        settings.sender_email,
        configuration_set=settings.ses_configuration_set or None,
        links=link_signer(settings),
    )


def _web_push_sender(settings: Settings) -> ChannelSender:
    from footprint.adapters.channels.secrets import SecretJson
    from footprint.adapters.channels.web_push import CachedVapidKeys, WebPushSender

    vapid_secret = SecretJson(secrets(), settings.vapid_secret_name)
    return WebPushSender(CachedVapidKeys(vapid_secret), allow_loopback=settings.allow_loopback_destinations)


def _sms_sender(settings: Settings) -> ChannelSender:
    from footprint.adapters.channels.sms import SmsRelaySender, SnsSmsSender

    if settings.sms_provider == "sns":
        return SnsSmsSender(sns())
    return SmsRelaySender(settings.sms_provider_url, _secret_field(settings.sms_provider_secret_name, "token"))


def _zalo_zns_sender(settings: Settings) -> ChannelSender:
    from footprint.adapters.channels.secrets import SecretJson
    from footprint.adapters.channels.zalo_tokens import DynamoTokenStore, ZaloAccessTokens
    from footprint.adapters.channels.zalo_zns import ZaloZnsRelaySender, ZaloZnsSender
    from footprint.clock import current_clock

    if settings.zalo_zns_secret_name:
        tokens = ZaloAccessTokens(
            DynamoTokenStore(dynamodb(), settings.config_table),
            SecretJson(secrets(), settings.zalo_zns_secret_name),
            current_clock(),
            oauth_url=settings.zalo_oauth_url,
        )
        development = settings.zalo_zns_mode == "development"
        return ZaloZnsSender(tokens, url=settings.zalo_zns_api_url, development=development)
    zns_token = _secret_field(settings.zalo_zns_provider_secret_name, "token")
    return ZaloZnsRelaySender(settings.zalo_zns_provider_url, zns_token)


def link_signer(settings: Settings) -> LinkSigner | None:
    """Signs email links; None (marketing email is then refused) without a key or a public URL."""
    if not (settings.email_link_secret_name and settings.public_api_url):
        return None
    from footprint.adapters.channels.secrets import SecretKey
    from footprint.email_links import LinkSigner

    return LinkSigner(settings.public_api_url, SecretKey(secrets(), settings.email_link_secret_name))


def _secret_field(secret_name: str, field: str) -> TokenSource:
    """One field of a JSON secret (a relay's ``token``, the webhooks' ``signing_secret``), read when
    needed and cached like the secret; None when no secret is named."""
    from footprint.adapters.channels.secrets import SecretJson
    from footprint.adapters.channels.sms import no_token

    if not secret_name:
        return no_token
    secret = SecretJson(secrets(), secret_name)

    def value() -> str | None:
        found: Any = secret().get(field)
        return str(found) if found else None

    return value


@cache
def send_service() -> SendService:
    from footprint.adapters.events_store import DynamoDBEventStore
    from footprint.adapters.outbox import DynamoOutbox
    from footprint.adapters.pressure_counter import DynamoPressureCounter
    from footprint.adapters.profiles_store import DynamoProfileStore
    from footprint.adapters.steps import DynamoStepLog
    from footprint.clock import current_clock
    from footprint.services.send import SendService
    from footprint.services.timeline import ProfileEvents

    settings = get_settings()
    client = dynamodb()
    profiles = DynamoProfileStore(client, settings.profiles_table)
    return SendService(
        profiles=profiles,
        pruner=profiles,
        outbox=DynamoOutbox(client, settings.messages_table, timedelta(days=settings.event_retention_days)),
        channels=channels(settings),
        clock=current_clock(),
        metrics=PowertoolsDeliveryMetrics(),
        guard=idempotency_guard(settings),
        steps=DynamoStepLog(client, settings.steps_table, timedelta(days=settings.event_retention_days)),
        policy=settings.messaging_policy,
        consent=settings.consent_policy,
        pressure=DynamoPressureCounter(client, settings.messages_table),
        outcomes=ProfileEvents(
            profiles,
            DynamoDBEventStore(settings.events_table, retention_days=settings.event_retention_days, client=client),
        ),
    )


def reset() -> None:
    from footprint.settings import get_settings as cached_settings

    for factory in (
        _client_config,
        dynamodb,
        sesv2,
        sns,
        sqs,
        retry_later,
        secrets,
        idempotency_config,
        send_service,
        _onsite_sender,
        cached_settings,
    ):
        factory.cache_clear()
