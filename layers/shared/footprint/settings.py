"""Runtime configuration, read from the environment once per cold start (never at import)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from footprint.models.pressure import MessagingPolicy


class Settings(BaseSettings):
    """Names of the stack's resources, as the SAM template passes them to every function."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    stage: str = "local"
    events_table: str = Field(description="EventsTable: every accepted tracking call, streamed to evaluate")
    profiles_table: str = Field(description="ProfilesTable: profiles, identity aliases, enrollments")
    config_table: str = Field(description="ConfigTable: sources (write keys) and published journeys")
    messages_table: str = Field(description="MessagesTable: the outbox of every message sent")
    idempotency_table: str = Field(description="IdempotencyTable: Powertools idempotency records")
    steps_table: str = Field(description="StepsTable: every journey step, once, for funnel reports")
    send_queue_url: str = ""
    timers_queue_url: str = ""
    timers_queue_arn: str = ""
    schedule_group: str = ""
    scheduler_role_arn: str = ""
    scheduler_dead_letter_arn: str = ""
    # EvaluatePoisonQueue: records evaluate refuses as invalid go there instead of being retried.
    evaluate_poison_queue_url: str = ""
    sender_email: str = "noreply@example.com"
    vapid_secret_name: str = ""
    # {"signing_secret": "<base64, with or without whsec_>"}: signs webhooks (Standard Webhooks).
    webhook_secret_name: str = ""
    # The VAPID public key (base64url, uncompressed P-256 point) browsers subscribe with; public, so a
    # stack parameter rather than a secret. Empty: web push opt-in is off (settings say so).
    vapid_public_key: str = ""
    # Web push endpoints on loopback (plain http allowed) for the local stack and tests; never in production.
    allow_loopback_destinations: bool = False
    # SMS through Amazon SNS ("sns"), or a relay you run ("relay": its URL, credentials in Secrets
    # Manager); empty = off. A relay URL alone also means "relay".
    sms_provider: str = ""
    sms_provider_url: str = ""
    sms_provider_secret_name: str = ""
    # Zalo ZNS straight to Zalo: the app's secret {"app_id", "secret_key", "refresh_token"}; mode
    # "development" for Zalo's free test sends. The URLs change only for tests and the local stack.
    zalo_zns_secret_name: str = ""
    zalo_zns_mode: str = ""
    zalo_zns_api_url: str = "https://business.openapi.zalo.me/message/template"
    zalo_oauth_url: str = "https://oauth.zaloapp.com/v4/oa/access_token"
    # ...or through a relay of your own (used when no Zalo secret is set).
    zalo_zns_provider_url: str = ""
    zalo_zns_provider_secret_name: str = ""
    # Stack-wide frequency caps and default quiet hours, across journeys (JSON; models/pressure.py).
    messaging_policy: MessagingPolicy = MessagingPolicy()
    # How long sources and journeys are cached in a warm Lambda before being read again.
    config_cache_seconds: int = 60
    # Events and journey steps are kept this long (DynamoDB TTL); profiles are kept until deleted.
    event_retention_days: int = 400

    def unconfigured_channels(self) -> dict[str, str]:
        """Channels this stack cannot send on, each with what turns it on (footprint.adapters.send_wiring
        builds a sender for every other channel); journeys using them are refused at validate and publish."""
        missing = {
            "email": (self.sender_email, "set the SenderEmail parameter to a verified SES identity"),
            "web_push": (self.vapid_secret_name, "set VapidSecretName to a secret holding the VAPID keys"),
            "sms": (
                self.sms_provider == "sns" or self.sms_provider_url,
                "set the SmsProvider parameter (sns, or a relay URL)",
            ),
            "zalo_zns": (
                self.zalo_zns_secret_name or self.zalo_zns_provider_url,
                "set ZaloZnsSecretName to the secret holding the Zalo app's id, key and refresh token",
            ),
        }
        return {
            channel: f"{channel} is not configured on this stack: {how}"
            for channel, (on, how) in missing.items()
            if not on
        }


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process; cached so each cold start reads the environment once."""
    return Settings()  # values come from the environment
