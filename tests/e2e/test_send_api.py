"""The transactional send API on the local stack: a backend confirms an order by email, with its own
idempotency key; the email reaches SES once however often the call is repeated; a person without an
address gets an answer saying so, at once."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
import requests
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from footprint.models.profile import profile_id_for
from footprint_local.stack import LocalStack
from tests.e2e.test_email_local import profile_of

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]

TIMEOUT = 10
ADDRESS = "an.order@example.vn"


def sent_to(address: str) -> list[EmailMessage]:
    """What SES received for ``address``, parsed from bytes as a mail client does (8-bit UTF-8 parts)."""
    found = []
    for sent in ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages:
        parsed = message_from_bytes(getattr(sent, "raw_data", "").encode("utf-8"), policy=default)
        if isinstance(parsed, EmailMessage) and parsed["To"] == address:
            found.append(parsed)
    return found


def send(stack: LocalStack, **body: Any) -> requests.Response:
    return requests.post(f"{stack.api_url}/admin/messages", json=body, timeout=TIMEOUT)


def confirmation(**overrides: Any) -> dict[str, Any]:
    return {
        "idempotency_key": "order-1042-confirmed",
        "source_id": "demo",
        "user_id": "u-an",
        "channel": "email",
        "content": {
            "subject": "Đơn hàng {{ trigger.order_id }} đã được xác nhận",
            "html": "<p>Cảm ơn {{ profile.first_name | default: 'bạn' }}! Tổng: {{ trigger.total }} ₫</p>",
        },
        "properties": {"order_id": "1042", "total": "1.250.000"},
        **overrides,
    }


def identify(stack: LocalStack, user_id: str, traits: dict[str, Any]) -> str:
    response = requests.post(
        f"{stack.api_url}/v1/identify",
        json={"userId": user_id, "traits": traits, "messageId": f"identify-{user_id}"},
        auth=(stack.server_write_key, ""),
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    profile_id = profile_id_for("demo", "user", user_id)
    stack.wait_until(lambda: profile_of(stack, profile_id), message="the identify was not folded")
    return profile_id


def test_an_order_confirmation_is_sent_once_however_often_it_is_asked(local_stack: LocalStack) -> None:
    # No marketing consent: an order confirmation needs only the address.
    identify(local_stack, "u-an", {"email": ADDRESS, "first_name": "An"})

    first = send(local_stack, **confirmation())
    again = send(local_stack, **confirmation())

    assert (first.status_code, first.json()["result"]) == (202, "accepted"), first.text
    assert again.json()["message_id"] == first.json()["message_id"]
    local_stack.wake_pumps()
    [email] = local_stack.wait_until(lambda: sent_to(ADDRESS), message="no email reached SES")
    assert isinstance(email, EmailMessage)
    assert str(email["Subject"]) == "Đơn hàng 1042 đã được xác nhận"
    html = email.get_body(preferencelist=("html",))
    assert html is not None
    assert "Cảm ơn An! Tổng: 1.250.000 ₫" in html.get_content()
    assert email["List-Unsubscribe"] is None  # transactional: no unsubscribe, no promotion
    settled = local_stack.wait_until(
        lambda: (answer := send(local_stack, **confirmation()).json()).get("status") and answer
    )
    assert settled == {**settled, "result": "accepted", "duplicate": True, "status": "sent"}
    local_stack.wake_pumps()
    local_stack.wait_for_pump_cycles(local_stack.pumps[-1])
    assert len(sent_to(ADDRESS)) == 1


def test_a_person_without_an_address_is_told_at_once(local_stack: LocalStack) -> None:
    identify(local_stack, "u-binh", {"phone": "+84912000111"})

    no_email = send(local_stack, **confirmation(idempotency_key="order-7", user_id="u-binh"))

    assert (no_email.status_code, no_email.json()["result"]) == (200, "unreachable")
    assert "no email address" in no_email.json()["reason"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (confirmation(idempotency_key="k-1", user_id="nobody-here"), 404, "unknown_person"),
        (
            confirmation(content={"subject": "{{ trigger.order_id | no_such_filter }}", "html": "x"}),
            422,
            "invalid_message",
        ),
        (confirmation(idempotency_key="k-3", content={"title": "only a title"}), 422, "invalid_message"),
        (confirmation(channel="onsite_form"), 400, "invalid_message"),
        ({**confirmation(), "anonymous_id": "a-1"}, 400, "invalid_message"),
        ({k: v for k, v in confirmation().items() if k != "idempotency_key"}, 400, "invalid_message"),
    ],
)
def test_requests_that_cannot_be_sent_get_a_4xx_naming_why(
    local_stack: LocalStack, body: dict[str, Any], status: int, code: str
) -> None:
    response = send(local_stack, **body)

    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
