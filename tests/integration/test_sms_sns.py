"""SMS through Amazon SNS on moto: the number in E.164, the journey's sender id, SNS's refusals."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from footprint.adapters.channels.sms import SnsSmsSender
from footprint.models.messages import OutgoingMessage
from footprint.models.profile import Profile
from footprint.services.retries import RetryableDeliveryError
from tests.builders import T0

pytestmark = pytest.mark.integration

REGION = "us-east-1"
LAN = Profile(profile_id="p-lan", source_id="demo", phone="+84 (0) 912 345 678")
MESSAGE = OutgoingMessage(
    idempotency_key="cart:1:e-1:sms:0",
    profile_id="p-lan",
    source_id="demo",
    journey_id="cart",
    journey_version=1,
    enrollment_id="e-1",
    node_id="sms",
    channel="sms",
    requested_at=T0,
)


@pytest.fixture
def published(moto_aws: None) -> tuple[SnsSmsSender, list[dict[str, Any]]]:
    """The sender, and the Publish parameters SNS received (moto keeps the number and text only)."""
    client = boto3.client("sns", region_name=REGION)
    calls: list[dict[str, Any]] = []
    client.meta.events.register("provide-client-params.sns.Publish", lambda params, **_: calls.append(dict(params)))
    return SnsSmsSender(client), calls


def test_an_sms_is_published_to_the_number_in_e164_with_the_sender_id(published: Any) -> None:
    sender, calls = published
    text = "Chị Lan ơi, giỏ hàng còn 2 sản phẩm. Mã HE20 giảm 20%."

    result = sender.send(MESSAGE, LAN, {"body": text, "sender": "SHOPVN"})

    assert result.status == "sent"
    assert list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values()) == [("+84912345678", text)]
    [call] = calls
    assert call["MessageAttributes"] == {"AWS.SNS.SMS.SenderID": {"DataType": "String", "StringValue": "SHOPVN"}}


def test_a_number_that_is_not_one_fails_without_calling_sns(published: Any) -> None:
    sender, calls = published

    result = sender.send(MESSAGE, LAN.model_copy(update={"phone": "12"}), {"body": "x"})

    assert result.status == "failed"
    assert calls == []


def test_sns_refusals_fail_and_throttling_is_retried(published: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sender, _ = published

    def refuse(code: str) -> Any:
        def publish(**_: Any) -> Any:
            raise ClientError({"Error": {"Code": code, "Message": "no"}}, "Publish")

        return publish

    monkeypatch.setattr(sender.client, "publish", refuse("InvalidParameter"))
    assert sender.send(MESSAGE, LAN, {"body": "x"}).status == "failed"
    monkeypatch.setattr(sender.client, "publish", refuse("Throttling"))
    with pytest.raises(RetryableDeliveryError):
        sender.send(MESSAGE, LAN, {"body": "x"})


def test_a_number_sns_or_the_format_refuses_goes_on_the_suppression_list(
    published: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender, _ = published
    not_a_number = sender.send(MESSAGE, LAN.model_copy(update={"phone": "12"}), {"body": "x"})
    assert not_a_number.invalid_address == "12"

    def refuse(message: str) -> Any:
        def publish(**_: Any) -> Any:
            raise ClientError({"Error": {"Code": "InvalidParameter", "Message": message}}, "Publish")

        return publish

    monkeypatch.setattr(sender.client, "publish", refuse("Invalid parameter: PhoneNumber Reason: +84912 is not valid"))
    assert sender.send(MESSAGE, LAN, {"body": "x"}).invalid_address == LAN.phone
    # Another parameter refused (the sender id): the number is not to blame.
    monkeypatch.setattr(sender.client, "publish", refuse("Invalid parameter: MessageAttributes"))
    assert sender.send(MESSAGE, LAN, {"body": "x"}).invalid_address is None
