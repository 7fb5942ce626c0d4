"""`footprint report` on the local stack: three visitors through the start of the services flow (seed 000), their
steps recorded by the real evaluate function in the stack's StepsTable, and the funnel the CLI prints from them."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest

from footprint.clock import ManualClock
from footprint_local.cli import main as footprint_cli
from footprint_local.stack import LocalStack
from tests.e2e.journeys import START, track

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]

PRODUCT: dict[str, Any] = {"product_id": "vay-nu-he", "name": "Váy nữ phong cách hè", "dwell_seconds": 16}
ON_THE_FORM = {"journey_id": "services-consult", "node_id": "consult_form"}


def enrollments(stack: LocalStack) -> list[dict[str, Any]]:
    return [e for e in stack.state()["enrollments"] if e.get("journey_id") == "services-consult"]


def channels_sent(stack: LocalStack) -> list[str]:
    return sorted(m["channel"] for m in stack.state()["messages"] if m.get("journey_id") == "services-consult")


def report(stack: LocalStack, *options: str) -> str:
    out = io.StringIO()
    local = stack.local_page_url.split("/_local")[0]
    assert footprint_cli(["report", "services-consult", "--local", local, *options], out=out) == 0
    return out.getvalue()


def test_the_report_counts_what_three_visitors_did(stack: LocalStack, clock: ManualClock) -> None:
    # an dismisses the form and gets the onsite push (and, without web push, is done); binh adds the
    # product to the cart while reading, so gets no form; chi buys after the form.
    track(stack, clock, "add_to_cart", visitor="binh", product_id="vay-nu-he")
    stack.wait_until(lambda: stack.state()["profiles"] != [], timeout=10)
    clock.advance(timedelta(seconds=5))
    for visitor in ("an", "binh", "chi"):
        track(stack, clock, "product_viewed", visitor=visitor, **PRODUCT)
    stack.wait_until(lambda: len(enrollments(stack)) == 3, timeout=10)
    assert sorted(e["status"] for e in enrollments(stack)) == ["active", "active", "cancelled"]
    stack.wait_until(lambda: channels_sent(stack) == ["onsite_form", "onsite_form"], timeout=10)

    clock.advance(timedelta(seconds=5))
    track(stack, clock, "form_dismissed", visitor="an", **ON_THE_FORM)
    track(stack, clock, "purchase", visitor="chi", order_id="o-1")
    stack.wait_until(
        lambda: (
            sorted(str(e.get("current_node") or e["status"]) for e in enrollments(stack))
            == ["cancelled", "converted", "pause_after_dismiss"]
        ),
        timeout=10,
    )
    clock.advance(timedelta(seconds=10))
    stack.wake_pumps()
    stack.wait_until(lambda: channels_sent(stack) == ["onsite_form", "onsite_form", "onsite_push"], timeout=10)

    text = report(stack)

    lines = text.splitlines()
    assert lines[0].startswith("services-consult (v1, nodes of v1): ")
    assert "triggered 3 · entered 2 · did not enter 1 · pending 0 · in progress 0 · converted 1 · exited 0 · " in text
    assert "· completed 1" in text
    assert "conversion rate 50.0 % (converted / entered)" in text
    rows = [line[2:].split() for line in lines if line.startswith(("* ", "  "))]
    columns = {row[0]: row[1:10] for row in rows}
    # type, visited, sent, failed, skipped, held, converted, exited, completed
    assert columns["viewed_without_cart"] == ["trigger", "2", "0", "0", "0", "0", "0", "0", "0"]
    assert columns["consult_form"] == ["send", "2", "2", "0", "0", "0", "0", "0", "0"]
    assert columns["await_form_response"] == ["wait_for", "2", "0", "0", "0", "0", "1", "0", "0"]
    assert columns["onsite_offer"] == ["send", "1", "1", "0", "0", "0", "0", "0", "0"]
    assert columns["done_unreachable"] == ["exit", "1", "0", "0", "0", "0", "0", "0", "1"]
    assert columns["web_push_reminder"][1] == "0"
    drop = next(line.split() for line in lines if line.startswith("await_form_response "))
    # from, to, visited, went on, in progress, dropped (chi converted there: her run ended), drop-off
    assert drop == ["await_form_response", "pause_after_dismiss", "2", "1", "0", "1", "50.0", "%"]
    assert any(line.split()[:3] == ["onsite_form", "2", "1"] for line in lines)

    # The window is [since, until) on the step times; --json gives the same numbers.
    later = json.loads(report(stack, "--since", (START + timedelta(seconds=8)).isoformat(), "--json"))
    assert (later["entered"], later["converted"], later["completed"], later["steps"]) == (0, 1, 1, 6)
    assert json.loads(report(stack, "--version", "2", "--json"))["steps"] == 0
