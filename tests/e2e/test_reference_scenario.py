"""The reference scenario (seed 000) end to end on the local stack, driven over HTTP with a moved clock.

Events go in through the tracking API, through the stream pump into evaluate; waits go through SQS
timers (the 10 s pause) and Scheduler (1 day and more); messages come out through SendQueue and send. Web push
goes to a loopback push service, really encrypted.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from footprint.clock import ManualClock
from footprint.engine import EventInput, ProfileView, Simulator, TimelineEntry
from footprint.models.journey import load_journey_yaml
from footprint_local.cli import main as footprint_cli
from footprint_local.stack import LocalStack
from tests.e2e.journeys import JOURNEYS, START, track

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]


class PushService(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        headers = {name.lower(): value for name, value in self.headers.items()}
        PushService.received.append({"path": self.path, "headers": headers, "body": body})
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def push_service() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PushService)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def services_messages(stack: LocalStack) -> list[dict[str, Any]]:
    rows = [m for m in stack.state()["messages"] if m.get("journey_id") == "services-consult"]
    return sorted(rows, key=lambda m: str(m.get("sent_at")))


def wait_for_messages(stack: LocalStack, count: int) -> list[dict[str, Any]]:
    stack.wait_until(lambda: len(services_messages(stack)) >= count, timeout=20)
    return services_messages(stack)


def test_the_services_flow_on_the_local_stack(stack: LocalStack, clock: ManualClock, push_service: str) -> None:
    subscription = {"endpoint": f"{push_service}/push/lan", "keys": _browser_keys()}
    track(stack, clock, "web_push_subscribed", visitor="lan", message_id="m-sub", subscription=subscription)
    product = {"product_id": "vay-nu-he", "name": "Váy nữ phong cách hè", "dwell_seconds": 16}
    track(stack, clock, "product_viewed", visitor="lan", message_id="m-view", **product)
    # The same call again (a client retry): stored once, evaluated once.
    track(stack, clock, "product_viewed", visitor="lan", message_id="m-view", **product)

    # Read for 16 s without adding the product to the cart: the consult form, at once.
    [form] = wait_for_messages(stack, 1)
    assert form["channel"] == "onsite_form"
    # The local page and console show each journey step as the real evaluate function logged it.
    activity = [line["text"] for line in stack.state()["activity"]]
    assert any(text.startswith("journey step: services-consult v1 consult_form sent") for text in activity)

    # The visitor closes the form; 10 s later, an onsite push about the product.
    clock.advance(timedelta(seconds=15))
    track(
        stack,
        clock,
        "form_dismissed",
        visitor="lan",
        message_id="m-dismiss",
        journey_id="services-consult",
        node_id="consult_form",
    )
    stack.wait_until(
        lambda: any(e.get("current_node") == "pause_after_dismiss" for e in _enrollments(stack)), timeout=10
    )
    clock.advance(timedelta(seconds=10))
    stack.wake_pumps()
    messages = wait_for_messages(stack, 2)
    assert [m["channel"] for m in messages] == ["onsite_form", "onsite_push"]

    # One day after the behaviour: a web push, through a Scheduler schedule.
    clock.advance(timedelta(days=1))
    stack.wake_pumps()
    messages = wait_for_messages(stack, 3)
    assert messages[2]["channel"] == "web_push"
    assert messages[2]["status"] == "sent"

    # Not clicked within a day: a stronger web push the next evening (19:30 local, 12:30 UTC).
    clock.advance(timedelta(days=1))
    stack.wake_pumps()
    stack.wait_until(lambda: any(e.get("current_node") == "next_evening" for e in _enrollments(stack)), timeout=20)
    clock.advance(timedelta(hours=11))
    stack.wake_pumps()
    messages = wait_for_messages(stack, 4)
    assert [m["channel"] for m in messages] == ["onsite_form", "onsite_push", "web_push", "web_push"]
    assert str(messages[3]["sent_at"]) >= "2026-03-04T12:30"  # not before the evening it waited for
    assert len({m["pk"] for m in messages}) == 4  # one outbox row per idempotency key
    assert len(PushService.received) == 2
    assert all(r["headers"]["content-encoding"] == "aes128gcm" for r in PushService.received)

    # `footprint simulate` gives the same timeline offline: the same steps send the same messages, and
    # where the test moved the clock exactly (the first two), at the same moments.
    simulated = [entry for entry in _simulate(product) if entry.outcome == "sent"]
    assert [(entry.node_id, entry.channel) for entry in simulated] == [(m["node_id"], m["channel"]) for m in messages]
    for entry, message in zip(simulated[:2], messages[:2], strict=True):
        assert datetime.fromisoformat(str(message["sent_at"])) == entry.at


def test_the_cli_publishes_and_pauses_on_the_local_stack(stack: LocalStack, capsys: Any) -> None:
    local = stack.local_page_url.split("/_local")[0]
    assert footprint_cli(["list", "--local", local]) == 0
    assert "services-consult" in capsys.readouterr().out
    assert footprint_cli(["pause", "services-consult", "--local", local]) == 0
    assert footprint_cli(["list", "--local", local]) == 0
    assert "paused" in capsys.readouterr().out
    assert footprint_cli(["resume", "services-consult", "--local", local]) == 0


def _simulate(product: dict[str, Any]) -> list[TimelineEntry]:
    journey = load_journey_yaml((JOURNEYS / "services-consult.yaml").read_text(encoding="utf-8"))
    visitor = ProfileView(id="lan", timezone="Asia/Ho_Chi_Minh", reachable_channels=frozenset({"web_push"}))
    simulator = Simulator(journey, profiles={"lan": visitor})
    simulator.add_event("lan", EventInput(id="m-view", name="product_viewed", properties=product, timestamp=START))
    dismissed = {"journey_id": "services-consult", "node_id": "consult_form"}
    at = START + timedelta(seconds=15)
    simulator.add_event("lan", EventInput(id="m-dismiss", name="form_dismissed", properties=dismissed, timestamp=at))
    return simulator.run()


def _enrollments(stack: LocalStack) -> list[dict[str, Any]]:
    return [e for e in stack.state().get("enrollments", []) if e.get("journey_id") == "services-consult"]


def _browser_keys() -> dict[str, str]:
    import base64
    import os

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return {"p256dh": b64(public), "auth": b64(os.urandom(16))}
