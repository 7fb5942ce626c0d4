"""The channels Footprint sends on, one name everywhere (journey YAML, messages, reports, docs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict

MessageChannel = Literal["onsite_form", "onsite_push", "web_push", "email", "sms", "zalo_zns", "webhook"]
# Marketing messages need the visitor's consent and carry an unsubscribe link; transactional ones
# (an order confirmation) need only a deliverable address and carry no promotion.
MessageCategory = Literal["marketing", "transactional"]


class ChannelSettings(BaseModel):
    """What turns each channel on, as the stack's parameters set it. The one place that says which
    channels a stack cannot send on and why: ``Settings.unconfigured_channels`` (admin, from the
    environment send also gets) and the CLI (from a deployed stack's parameters, or the local stack)
    both ask it. ``footprint.adapters.send_wiring`` builds a sender for every other channel (a test
    holds the two together); onsite channels and webhooks need nothing."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sender_email: str = ""
    vapid_secret_name: str = ""
    sms_provider: str = ""
    sms_provider_url: str = ""
    zalo_zns_secret_name: str = ""
    zalo_zns_provider_url: str = ""

    @classmethod
    def of_stack(cls, parameters: Mapping[str, str]) -> ChannelSettings:
        """From a CloudFormation stack's parameters (DescribeStacks); one its template lacks is empty."""
        return cls(**{field: parameters.get(parameter, "") for field, parameter in STACK_PARAMETERS.items()})

    def unconfigured(self) -> dict[str, str]:
        """Channels this stack cannot send on, each with what turns it on; journeys using them are
        refused at validate and publish."""
        missing: dict[MessageChannel, tuple[object, str]] = {
            "email": (self.sender_email, "set the SenderEmail parameter to a verified SES identity"),
            "web_push": (self.vapid_secret_name, "set VapidSecretName to a secret holding the VAPID keys"),
            "sms": (
                self.sms_provider == "sns" or self.sms_provider_url,
                "set SmsProvider to sns (Amazon SNS), or SmsProviderUrl to your SMS relay's https endpoint",
            ),
            "zalo_zns": (
                self.zalo_zns_secret_name or self.zalo_zns_provider_url,
                "set ZaloZnsSecretName to the secret holding the Zalo app's id, key and refresh token, or "
                "ZaloZnsProviderUrl to your ZNS relay's https endpoint",
            ),
        }
        return {
            channel: f"{channel} is not configured on this stack: {how}"
            for channel, (on, how) in missing.items()
            if not on
        }


# The stack parameter behind each field (infra/template.yaml passes it to every function as the
# field's variable, SENDER_EMAIL: !Ref SenderEmail; a test holds the two together).
STACK_PARAMETERS: dict[str, str] = {
    "sender_email": "SenderEmail",
    "vapid_secret_name": "VapidSecretName",
    "sms_provider": "SmsProvider",
    "sms_provider_url": "SmsProviderUrl",
    "zalo_zns_secret_name": "ZaloZnsSecretName",
    "zalo_zns_provider_url": "ZaloZnsProviderUrl",
}
