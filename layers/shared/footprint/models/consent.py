"""Which marketing messages need a recorded "yes" first: the stack's consent policy, per source.

Email, SMS and Zalo ZNS marketing are **opt-in** by default: an address with no consent recorded
gets no marketing message, as Vietnam's Decree 13/2023 and 91/2020 on spam, GDPR and the
operators' brandname rules expect. A source whose contacts were collected with consent elsewhere
(a CRM import, a shop whose sign-up form had its own checkbox) may be set **opt-out**: an address
is then reachable until its owner says no. Either way a "no" (``denied``) and an address still
waiting for its owner's confirmation (``pending``) stop marketing, and transactional messages
(an order confirmation) ask no marketing consent at all.

Web push and onsite messages belong to the browser: the browser's own permission prompt (or the
page being open) is the consent, so no policy applies to them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ConsentMode = Literal["opt_in", "opt_out"]
# The channels that reach a person's addresses; their marketing follows the policy.
POLICY_CHANNELS: tuple[str, ...] = ("email", "sms", "zalo_zns")


class ChannelConsent(BaseModel):
    """How one source's contacts consent, per channel."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: ConsentMode = "opt_in"
    sms: ConsentMode = "opt_in"
    zalo_zns: ConsentMode = "opt_in"

    def needs_grant(self, channel: str) -> bool:
        """Whether marketing on ``channel`` needs consent "granted" (not just "not denied")."""
        return channel in POLICY_CHANNELS and getattr(self, channel) == "opt_in"


OPT_IN = ChannelConsent()
OPT_OUT = ChannelConsent(email="opt_out", sms="opt_out", zalo_zns="opt_out")


class ConsentPolicy(BaseModel):
    """The stack's ``ConsentPolicy`` parameter (JSON), e.g. ``{"sources": {"crm-import": {"email":
    "opt_out"}}}``: ``default`` for every source (opt-in on each channel unless it says otherwise),
    ``sources`` per source id, each replacing the default for the channels it names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: ChannelConsent = OPT_IN
    sources: dict[str, dict[str, ConsentMode]] = Field(default_factory=dict)

    def for_source(self, source_id: str | None) -> ChannelConsent:
        override = self.sources.get(source_id or "")
        if not override:
            return self.default
        return ChannelConsent.model_validate({**self.default.model_dump(), **override})

    @model_validator(mode="after")
    def _known_channels(self) -> ConsentPolicy:
        for source_id, override in self.sources.items():
            unknown = set(override) - set(POLICY_CHANNELS)
            if unknown:
                raise ValueError(f"source {source_id!r}: no consent setting for {sorted(unknown)}")
        return self
