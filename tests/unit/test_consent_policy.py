"""Marketing consent: opt-in by default on email, SMS and ZNS, opt-out per source when set."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from footprint.models.consent import OPT_IN, OPT_OUT, ConsentPolicy
from footprint.models.profile import Profile
from footprint.settings import Settings

HOA = Profile(profile_id="p", source_id="shop", email="hoa@example.com", phone="+84912345678")


@pytest.mark.parametrize("channel", ["email", "sms", "zalo_zns"])
@pytest.mark.parametrize(
    ("state", "opt_in", "opt_out"),
    [
        (None, False, True),  # nothing recorded: only an opt-out source reaches the address
        ("granted", True, True),
        ("pending", False, False),  # typed into a page, not confirmed by its owner yet
        ("denied", False, False),
    ],
)
def test_what_each_consent_state_allows_under_each_policy(
    channel: str, state: str | None, opt_in: bool, opt_out: bool
) -> None:
    profile = HOA.model_copy(update={"consent": {channel: state} if state else {}})
    assert profile.reachable_on(channel) is opt_in  # type: ignore[arg-type]
    assert profile.reachable_on(channel, OPT_OUT) is opt_out  # type: ignore[arg-type]
    assert profile.deliverable_on(channel)  # type: ignore[arg-type]  # transactional: no marketing consent asked


def test_browser_channels_follow_the_browser_not_the_policy() -> None:
    assert HOA.reachable_on("onsite", OPT_IN)
    assert not HOA.model_copy(update={"consent": {"onsite": "denied"}}).reachable_on("onsite", OPT_IN)


def test_a_source_can_be_set_opt_out_channel_by_channel() -> None:
    policy = ConsentPolicy.model_validate({"sources": {"crm-import": {"email": "opt_out"}}})
    crm = policy.for_source("crm-import")
    assert (crm.needs_grant("email"), crm.needs_grant("sms"), crm.needs_grant("zalo_zns")) == (False, True, True)
    assert policy.for_source("shop") == OPT_IN
    assert policy.for_source(None) == OPT_IN
    everyone_out = ConsentPolicy.model_validate({"default": {"email": "opt_out", "sms": "opt_out"}})
    assert not everyone_out.for_source("shop").needs_grant("sms")
    assert everyone_out.for_source("shop").needs_grant("zalo_zns")


@pytest.mark.parametrize(
    "bad",
    [
        {"sources": {"shop": {"web_push": "opt_out"}}},  # the browser's permission is its consent
        {"sources": {"shop": {"email": "maybe"}}},
        {"default": {"fax": "opt_in"}},
    ],
)
def test_a_policy_that_names_no_real_setting_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ConsentPolicy.model_validate(bad)


def test_the_stack_reads_it_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    tables = dict.fromkeys(("EVENTS", "PROFILES", "CONFIG", "MESSAGES", "IDEMPOTENCY", "STEPS"), "t")
    for name, value in tables.items():
        monkeypatch.setenv(f"{name}_TABLE", value)
    monkeypatch.setenv("CONSENT_POLICY", '{"sources": {"crm-import": {"sms": "opt_out"}}}')
    assert not Settings.from_environment().consent_policy.for_source("crm-import").needs_grant("sms")
