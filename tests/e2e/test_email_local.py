"""Email on the local stack: the template's EmailLinksFunction routes, its generated link key and its
EmailFeedbackQueue, driven over HTTP and SQS.

The local stack does not emulate SES's event publishing, so the test puts the SES event on
EmailFeedbackQueue itself, as EventBridge would.
"""

from __future__ import annotations

import json
from email import message_from_string
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
import requests
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from footprint.adapters.channels.email import tags
from footprint.adapters.profiles_store import DynamoProfileStore
from footprint.models.messages import OutgoingMessage
from footprint.models.profile import Profile, profile_id_for
from footprint_local.stack import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]

TIMEOUT = 10
SES_EVENTS = json.loads((Path(__file__).parents[1] / "fixtures" / "ses_eventbridge_events.json").read_text())


def profile_of(stack: LocalStack, profile_id: str) -> Profile | None:
    return DynamoProfileStore(stack.clients.dynamodb, stack.resources.table_name("ProfilesTable")).get_profile(
        profile_id
    )


def sent_to(address: str) -> list[EmailMessage]:
    found = []
    for sent in ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages:
        parsed = message_from_string(getattr(sent, "raw_data", ""), policy=default)
        if isinstance(parsed, EmailMessage) and parsed["To"] == address:
            found.append(parsed)
    return found


def test_an_email_unsubscribes_in_one_click_and_a_bounce_suppresses_the_address(local_stack: LocalStack) -> None:
    address = "lan.local@example.com"
    # The shop's backend (a trusted key) records the address and its opt-in.
    traits = {"email": address, "consent": {"email": True}}
    identify = {"anonymousId": "visitor-mail", "traits": traits, "messageId": "id-mail-1"}
    response = requests.post(
        f"{local_stack.api_url}/v1/identify", json=identify, auth=(local_stack.server_write_key, ""), timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    profile_id = profile_id_for("demo", "anon", "visitor-mail")
    local_stack.wait_until(lambda: profile_of(local_stack, profile_id), message="the identify was not folded")

    message = OutgoingMessage(
        idempotency_key="local.v1.enr_local.email_1.1",
        profile_id=profile_id,
        source_id="demo",
        journey_id="local",
        journey_version=1,
        enrollment_id="enr_local",
        node_id="email_1",
        channel="email",
        content={"subject": "Ưu đãi hè", "html": '<p><a href="https://shop.example.com/he">Xem</a></p>'},
        requested_at=local_stack.clock.now(),
    )
    local_stack.clients.sqs.send_message(
        QueueUrl=local_stack.resources.queue_url("SendQueue"), MessageBody=message.model_dump_json()
    )
    local_stack.wake_pumps()
    [email] = local_stack.wait_until(lambda: sent_to(address), message="no email reached SES")

    unsubscribe = str(email["List-Unsubscribe"])[1:-1]
    # Links point at the local API, whose routes come from the template.
    assert unsubscribe.startswith(f"{local_stack.api_url}/v1/email/unsubscribe?token=")
    page = requests.get(unsubscribe, timeout=TIMEOUT)
    assert page.status_code == 200
    assert "Hủy đăng ký" in page.text
    for _ in range(2):
        one_click = requests.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}, timeout=TIMEOUT)
        assert one_click.status_code == 200, one_click.text
    tampered = requests.post(unsubscribe[:-3] + "xyz", data={"List-Unsubscribe": "One-Click"}, timeout=TIMEOUT)
    assert tampered.status_code == 400
    assert tampered.json()["error"]["code"] == "invalid_link"
    local_stack.wait_until(
        lambda: (
            (profile_of(local_stack, profile_id) or Profile(profile_id="", source_id="")).consent.get("email")
            == "denied"
        ),
        message="the unsubscribe was not folded into the profile",
    )

    bounce: dict[str, Any] = json.loads(json.dumps(SES_EVENTS["Bounce"]))
    bounce["detail"]["mail"]["tags"] = {tag["Name"]: [tag["Value"]] for tag in tags(message)}
    bounce["detail"]["bounce"]["bouncedRecipients"][0]["emailAddress"] = address
    local_stack.clients.sqs.send_message(
        QueueUrl=local_stack.resources.queue_url("EmailFeedbackQueue"), MessageBody=json.dumps(bounce)
    )
    local_stack.wake_pumps()
    suppressed = local_stack.wait_until(
        lambda: (profile_of(local_stack, profile_id) or Profile(profile_id="", source_id="")).suppressed,
        message="the bounce was not folded into the profile",
    )
    assert suppressed == {address: "bounced"}
