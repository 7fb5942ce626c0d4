"""The send function's composition root: its service, built from settings once per cold start.

Like ``footprint.adapters.wiring``: nothing is read or created at import; settings are read and
boto3 clients created on the first call, then cached. ``reset()`` forgets everything (tests).

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
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from botocore.config import Config

from footprint.adapters.channels.email import SesEmailSender
from footprint.adapters.channels.onsite import OnsiteInboxSender
from footprint.adapters.channels.secrets import SecretJson, SecretKey
from footprint.adapters.channels.sms import SmsRelaySender, SnsSmsSender, TokenSource, no_token
from footprint.adapters.channels.web_push import CachedVapidKeys, WebPushSender
from footprint.adapters.channels.webhook import JOURNEY_SECRETS_PREFIX, WebhookSender
from footprint.adapters.channels.zalo_tokens import DynamoTokenStore, ZaloAccessTokens
from footprint.adapters.channels.zalo_zns import ZaloZnsRelaySender, ZaloZnsSender
from footprint.adapters.events_store import DynamoDBEventStore
from footprint.adapters.outbox import DynamoOutbox
from footprint.adapters.pressure_counter import DynamoPressureCounter
from footprint.adapters.profiles_store import DynamoProfileStore
from footprint.adapters.send_queue import SqsRetryLater
from footprint.adapters.steps import DynamoStepLog
from footprint.clock import current_clock
from footprint.email_links import LinkSigner
from footprint.models.messages import DeliveryRecord, MessageChannel
from footprint.services.send import ChannelSender, DeliveryGuard, SendService
from footprint.services.timeline import ProfileEvents
from footprint.settings import Settings, get_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

# Powertools keeps a completed delivery's result this long; the outbox row guards beyond that.
IDEMPOTENCY_EXPIRY = timedelta(days=7)
# A stable prefix (instead of the module and function name) keeps records valid across refactors.
IDEMPOTENCY_KEY_PREFIX = "footprint-send"
# Fail fast inside a 30 s Lambda; botocore's standard mode retries throttling with backoff.
_CLIENT_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})


@cache
def dynamodb() -> DynamoDBClient:
    return boto3.client("dynamodb", config=_CLIENT_CONFIG)


@cache
def sesv2() -> SESV2Client:
    return boto3.client("sesv2", config=_CLIENT_CONFIG)


@cache
def sns() -> SNSClient:
    return boto3.client("sns", config=_CLIENT_CONFIG)


@cache
def sqs() -> SQSClient:
    return boto3.client("sqs", config=_CLIENT_CONFIG)


@cache
def retry_later() -> SqsRetryLater:
    return SqsRetryLater(sqs(), get_settings().send_queue_url)


@cache
def secrets() -> SecretsProvider:
    client: SecretsManagerClient = boto3.client("secretsmanager", config=_CLIENT_CONFIG)
    return SecretsProvider(boto3_client=client)


@cache
def idempotency_config() -> IdempotencyConfig:
    """The handler registers each invocation's Lambda context here, so an attempt cut short by the
    Lambda timeout does not block its retry until the record expires."""
    return IdempotencyConfig(
        event_key_jmespath="idempotency_key",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=int(IDEMPOTENCY_EXPIRY.total_seconds()),
    )


def idempotency_guard(settings: Settings) -> DeliveryGuard:
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


def channels(settings: Settings) -> dict[MessageChannel, ChannelSender]:
    onsite = OnsiteInboxSender()
    configured: dict[MessageChannel, ChannelSender] = {
        "onsite_form": onsite,
        "onsite_push": onsite,
        "webhook": WebhookSender(
            current_clock(),
            _secret_field(settings.webhook_secret_name, "signing_secret"),
            named_secret=journey_webhook_secret,
            allow_loopback=settings.allow_loopback_destinations,
        ),
    }
    if settings.sender_email:
        configured["email"] = SesEmailSender(
            sesv2(),
            settings.sender_email,
            configuration_set=settings.ses_configuration_set or None,
            links=link_signer(settings),
        )
    if settings.vapid_secret_name:
        vapid_secret = SecretJson(secrets(), settings.vapid_secret_name)
        configured["web_push"] = WebPushSender(
            CachedVapidKeys(vapid_secret), allow_loopback=settings.allow_loopback_destinations
        )
    if settings.sms_provider == "sns":
        configured["sms"] = SnsSmsSender(sns())
    elif settings.sms_provider_url:
        configured["sms"] = SmsRelaySender(
            settings.sms_provider_url, _secret_field(settings.sms_provider_secret_name, "token")
        )
    if settings.zalo_zns_secret_name:
        tokens = ZaloAccessTokens(
            DynamoTokenStore(dynamodb(), settings.config_table),
            SecretJson(secrets(), settings.zalo_zns_secret_name),
            current_clock(),
            oauth_url=settings.zalo_oauth_url,
        )
        development = settings.zalo_zns_mode == "development"
        configured["zalo_zns"] = ZaloZnsSender(tokens, url=settings.zalo_zns_api_url, development=development)
    elif settings.zalo_zns_provider_url:
        zns_token = _secret_field(settings.zalo_zns_provider_secret_name, "token")
        configured["zalo_zns"] = ZaloZnsRelaySender(settings.zalo_zns_provider_url, zns_token)
    return configured


def link_signer(settings: Settings) -> LinkSigner | None:
    """Signs email links; None (marketing email is then refused) without a key or a public URL."""
    if not (settings.email_link_secret_name and settings.public_api_url):
        return None
    return LinkSigner(settings.public_api_url, SecretKey(secrets(), settings.email_link_secret_name))


def journey_webhook_secret(name: str) -> str | None:
    """The signing_secret of the secret a webhook step names (footprint/webhooks/<name>); the provider
    caches it per container like the stack's secrets."""
    return _secret_field(JOURNEY_SECRETS_PREFIX + name, "signing_secret")()


def _secret_field(secret_name: str, field: str) -> TokenSource:
    """One field of a JSON secret (a relay's ``token``, the webhooks' ``signing_secret``), read when
    needed and cached like the secret; None when no secret is named."""
    if not secret_name:
        return no_token
    secret = SecretJson(secrets(), secret_name)

    def value() -> str | None:
        found: Any = secret().get(field)
        return str(found) if found else None

    return value


@cache
def send_service() -> SendService:
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
    for factory in (dynamodb, sesv2, sns, sqs, retry_later, secrets, idempotency_config, send_service, get_settings):
        factory.cache_clear()
