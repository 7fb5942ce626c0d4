"""Zalo ZNS straight to Zalo: what Zalo receives, tokens refreshed once and never burnt, its error codes.

Zalo is a loopback fake that behaves as Zalo documents (tests/zalo_fake.py); the token pair lives in
ConfigTable on moto, the app's secret in Secrets Manager on moto; the message goes through the real
send handler, wired from the environment as in Lambda.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest

import send_handler
from footprint.adapters import send_wiring
from footprint.adapters.channels.zalo_tokens import DynamoTokenStore, ZaloAccessTokens, ZaloTokenError
from footprint.adapters.channels.zalo_zns import ZaloZnsSender, tracking_id
from footprint.adapters.profiles_store import profile_to_item
from footprint.clock import ManualClock, SystemClock, use_clock
from footprint.models.messages import OutgoingMessage
from footprint.models.profile import Profile
from footprint.services.retries import RetryableDeliveryError
from tests.builders import T0
from tests.integration.conftest import Tables
from tests.integration.test_send_handler import LambdaContext, sqs_record
from tests.zalo_fake import APP_ID, SECRET_KEY, FakeZalo, running_fake_zalo

pytestmark = pytest.mark.integration

SECRET_NAME = "footprint/zalo"
LAN = Profile(
    profile_id="p-lan",
    source_id="demo",
    phone="0912 345 678",
    consent={"zalo_zns": "granted"},  # ZNS marketing is opt-in
    traits={"name": "Trần Thị Lan"},
)
PARAMS = {"customer_name": "Trần Thị Lan", "product_name": "Váy nữ phong cách hè"}


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    clock = ManualClock(T0)
    use_clock(clock)
    yield clock
    use_clock(SystemClock())


@pytest.fixture
def zalo(clock: ManualClock) -> Iterator[FakeZalo]:
    with running_fake_zalo(clock) as fake:
        yield fake


@pytest.fixture
def secret(tables: Tables) -> None:
    boto3.client("secretsmanager").create_secret(
        Name=SECRET_NAME,
        SecretString=json.dumps({"app_id": APP_ID, "secret_key": SECRET_KEY, "refresh_token": "refresh-0"}),
    )


def tokens(tables: Tables, zalo: FakeZalo, clock: ManualClock) -> ZaloAccessTokens:
    """One container's view of the token: several of these share the ConfigTable item."""
    credentials = {"app_id": APP_ID, "secret_key": SECRET_KEY, "refresh_token": "refresh-0"}
    store = DynamoTokenStore(tables.client, tables.config)
    return ZaloAccessTokens(store, lambda: credentials, clock, oauth_url=zalo.oauth_url)


def zns(key: str = "zns-1", **fields: Any) -> OutgoingMessage:
    values: dict[str, Any] = {
        "idempotency_key": key,
        "profile_id": "p-lan",
        "source_id": "demo",
        "journey_id": "order-confirmation",
        "journey_version": 1,
        "enrollment_id": "e-1",
        "node_id": "zns",
        "channel": "zalo_zns",
        "content": {"template_id": "248079", "params": PARAMS},
        "requested_at": T0,
    }
    values.update(fields)
    return OutgoingMessage.model_validate(values)


def send(sender: ZaloZnsSender, message: OutgoingMessage | None = None, profile: Profile = LAN) -> Any:
    message = message or zns()
    assert message.content is not None
    return sender.send(message, profile, message.content)


# ------------------------------------------------------------------ through the send function


def test_a_zns_step_reaches_zalo_as_its_api_documents(
    tables: Tables, zalo: FakeZalo, clock: ManualClock, secret: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stack configured with the Zalo app's secret (and Zalo's URLs pointed at the fake)
    monkeypatch.setenv("ZALO_ZNS_SECRET_NAME", SECRET_NAME)
    monkeypatch.setenv("ZALO_ZNS_MODE", "development")
    monkeypatch.setenv("ZALO_ZNS_API_URL", zalo.zns_url)
    monkeypatch.setenv("ZALO_OAUTH_URL", zalo.oauth_url)
    monkeypatch.setenv("VAPID_SECRET_NAME", "")
    send_wiring.reset()
    tables.client.put_item(TableName=tables.profiles, Item=profile_to_item(LAN))
    message = zns(key="order-confirmation:1:e-1:zns:0", content={"template_id": "248079", "params": PARAMS})

    # When send gets the message, twice (SQS redelivers)
    for _ in range(2):
        response = send_handler.handler({"Records": [sqs_record(message.model_dump_json(), "m-1")]}, LambdaContext())
        assert response["batchItemFailures"] == []

    # Then Zalo got one template message: the number in Zalo's format, the params, our tracking id
    [accepted] = zalo.accepted
    assert accepted == {
        "phone": "84912345678",
        "template_id": "248079",
        "template_data": PARAMS,
        "tracking_id": "order-confirmation:1:e-1:zns:0",
        "mode": "development",
        "access_token": "access-1",
    }
    # ...after one refresh with the secret's first refresh token, whose successor is now stored
    assert zalo.refreshes == ["refresh-0"]
    item = tables.client.get_item(TableName=tables.config, Key={"id": {"S": "zalo_zns/oa_token"}})["Item"]
    assert item["refresh_token"]["S"] == "refresh-1"
    send_wiring.reset()


# ------------------------------------------------------------------ tokens


def test_an_access_token_is_reused_until_it_is_due_then_refreshed_once(
    tables: Tables, zalo: FakeZalo, clock: ManualClock
) -> None:
    sender = ZaloZnsSender(tokens(tables, zalo, clock), url=zalo.zns_url)

    assert send(sender, zns("a")).status == "sent"
    clock.advance(timedelta(hours=12))
    assert send(sender, zns("b")).status == "sent"
    assert zalo.refreshes == ["refresh-0"]

    # A day later (Zalo's token lasts 25 h; we refresh 10 minutes early)
    clock.advance(timedelta(hours=12, minutes=55))
    assert send(sender, zns("c")).status == "sent"

    assert zalo.refreshes == ["refresh-0", "refresh-1"]
    assert [m["access_token"] for m in zalo.accepted] == ["access-1", "access-1", "access-2"]
    assert zalo.refused_refreshes == []


def test_a_token_zalo_rejects_early_is_refreshed_once_and_the_message_sent(
    tables: Tables, zalo: FakeZalo, clock: ManualClock
) -> None:
    sender = ZaloZnsSender(tokens(tables, zalo, clock), url=zalo.zns_url)
    assert send(sender, zns("a")).status == "sent"

    zalo.revoke_access_tokens()  # e.g. the OA admin re-authorised the app
    result = send(sender, zns("b"))

    assert result.status == "sent"
    assert [m["tracking_id"] for m in zalo.accepted] == ["a", "b"]
    assert zalo.refreshes == ["refresh-0", "refresh-1"]


def test_two_containers_never_burn_each_other_s_refresh_token(
    tables: Tables, zalo: FakeZalo, clock: ManualClock
) -> None:
    # Given two warm containers that both read the same, now expired, token pair
    first, second = tokens(tables, zalo, clock), tokens(tables, zalo, clock)
    first.current()
    clock.advance(timedelta(hours=25))
    stale = second.store.load()

    # When one holds the refresh lease, the other does not call Zalo: it retries its message later
    assert first.store.take_lease(stale, "someone-else", clock.now() + timedelta(seconds=60), clock.now())
    with pytest.raises(ZaloTokenError):
        second.refresh(stale)
    assert zalo.refreshes == ["refresh-0"]

    # And once the lease has lapsed, a container refreshes; the other, still holding the stale read,
    # takes the pair that was stored instead of spending the spent refresh token again
    clock.advance(timedelta(seconds=61))
    new_token = first.current()
    assert second.refresh(stale) == new_token
    assert zalo.refreshes == ["refresh-0", "refresh-1"]
    assert zalo.refused_refreshes == []


def test_a_refresh_zalo_refuses_keeps_the_message_for_a_retry(
    tables: Tables, zalo: FakeZalo, clock: ManualClock
) -> None:
    zalo.valid_refresh_tokens.clear()  # the first refresh token was spent elsewhere
    sender = ZaloZnsSender(tokens(tables, zalo, clock), url=zalo.zns_url)

    with pytest.raises(RetryableDeliveryError, match="Invalid refresh token"):
        send(sender)
    assert zalo.accepted == []


# ------------------------------------------------------------------ Zalo's error codes


@pytest.mark.parametrize(
    ("profile", "content", "code"),
    [
        (LAN.model_copy(update={"phone": "84 12"}), None, None),  # refused before calling Zalo
        (LAN, {"template_id": "999", "params": PARAMS}, -109),
        (LAN, {"template_id": "248079", "params": {}}, -111),
        (LAN, {"template_id": "248079", "params": {"customer_name": "Lan"}}, -112),
    ],
)
def test_permanent_refusals_are_failed_with_zalo_s_code(
    tables: Tables,
    zalo: FakeZalo,
    clock: ManualClock,
    profile: Profile,
    content: dict[str, Any] | None,
    code: int | None,
) -> None:
    sender = ZaloZnsSender(tokens(tables, zalo, clock), url=zalo.zns_url)
    message = zns(content=content) if content else zns()

    result = send(sender, message, profile)

    assert result.status == "failed"
    assert (f"error {code}" in result.detail) if code else ("phone" in result.detail)
    assert zalo.accepted == []


def test_a_recipient_who_cannot_receive_zns_is_a_permanent_failure(
    tables: Tables, zalo: FakeZalo, clock: ManualClock
) -> None:
    zalo.cannot_receive.add("84912345678")
    sender = ZaloZnsSender(tokens(tables, zalo, clock), url=zalo.zns_url)

    result = send(sender)

    assert (result.status, result.detail.split(":")[0]) == ("failed", "zalo_zns error -119")
    # Suppressed for ZNS only: the number may still take SMS.
    assert result.invalid_address == f"zalo_zns:{LAN.phone}"


def test_out_of_quota_is_retried_later(tables: Tables, zalo: FakeZalo, clock: ManualClock) -> None:
    zalo.out_of_quota = True
    sender = ZaloZnsSender(tokens(tables, zalo, clock), url=zalo.zns_url)

    with pytest.raises(RetryableDeliveryError, match="-115"):
        send(sender)


def test_tracking_ids_fit_zalo_s_48_characters() -> None:
    long_key = "cart-abandonment:12:e-0123456789abcdef0123456789abcdef:zns_reminder:3"
    assert len(tracking_id(long_key)) == 48
    assert tracking_id(long_key) == tracking_id(long_key)
    assert tracking_id("short:1:e:n:0") == "short:1:e:n:0"
