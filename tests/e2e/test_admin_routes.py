"""The admin routes on the local stack: the template's /admin routes are served by the real admin handler.

The local stack has no IAM, so these calls are unsigned; in AWS the same routes need a SigV4 signature
(tests/integration/test_template.py checks the AWS_IAM authorizer).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from footprint_local.cli import main as footprint_cli
from footprint_local.stack import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local_stack")]

TIMEOUT = 10
ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "journeys" / "services-consult.yaml"
EXAMPLE_EVENTS = ROOT / "journeys" / "examples" / "services-consult.jsonl"


def admin(stack: LocalStack, method: str, path: str, **options: Any) -> requests.Response:
    return requests.request(method, f"{stack.api_url}/admin{path}", timeout=TIMEOUT, **options)


def test_a_journey_is_published_listed_paused_and_resumed_over_http(local_stack: LocalStack) -> None:
    yaml_text = SERVICES.read_text(encoding="utf-8")

    published = admin(
        local_stack, "POST", "/journeys", data=yaml_text.encode(), headers={"content-type": "application/yaml"}
    )
    assert published.status_code == 201, published.text
    assert published.json()["state"]["active_version"] == 1

    listed = admin(local_stack, "GET", "/journeys").json()["journeys"]
    assert {"id": "services-consult", "status": "active", "active_version": 1, "versions": [1]} in listed

    paused = admin(local_stack, "POST", "/journeys/services-consult/pause")
    assert (paused.status_code, paused.json()["status"]) == (200, "paused")
    resumed = admin(local_stack, "POST", "/journeys/services-consult/resume?version=1")
    assert (resumed.status_code, resumed.json()["active_version"]) == (200, 1)

    # What evaluate reads: the active index in the stack's ConfigTable.
    config_table = local_stack.resources.tables["ConfigTable"].ref
    item = local_stack.clients.dynamodb.get_item(TableName=config_table, Key={"id": {"S": "journeys/active"}})
    assert json.loads(item["Item"]["value"]["S"])["services-consult"] == 1


def test_the_cli_and_the_admin_api_refuse_what_the_local_stack_cannot_send_in_the_same_words(
    local_stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    # The local stack runs the template's defaults: email and web push on, SMS and Zalo ZNS off.
    stack_info = requests.get(f"{local_stack.api_url}/_local/stack.json", timeout=TIMEOUT).json()
    assert stack_info["channels"]["vapid_secret_name"] == "footprint/vapid"
    assert stack_info["channels"]["zalo_zns_secret_name"] == stack_info["channels"]["zalo_zns_provider_url"] == ""
    cart = ROOT / "journeys" / "cart-abandonment.yaml"

    refused = admin(
        local_stack, "POST", "/journeys", data=cart.read_bytes(), headers={"content-type": "application/yaml"}
    )
    status = footprint_cli(["publish", str(cart), "--local", local_stack.api_url])

    assert refused.status_code == 422, refused.text
    [problem] = refused.json()["error"]["errors"]
    assert status == 1
    assert capsys.readouterr().err == (
        f"footprint: {cart}: {refused.json()['error']['reason']}\n"
        f"  {problem['location'].removeprefix('body.')}: {problem['message']}\n"
    )
    listed = admin(local_stack, "GET", "/journeys").json()["journeys"]
    assert "cart-abandonment" not in {journey["id"] for journey in listed}


def test_simulate_over_http_matches_the_cli(local_stack: LocalStack) -> None:
    events = [json.loads(line) for line in EXAMPLE_EVENTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = io.StringIO()
    assert footprint_cli(["simulate", str(SERVICES), str(EXAMPLE_EVENTS), "--json"], out=out) == 0

    response = admin(
        local_stack,
        "POST",
        "/journeys/simulate",
        json={"journey": SERVICES.read_text(encoding="utf-8"), "events": events},
    )

    assert response.status_code == 200, response.text
    assert response.json()["timeline"] == [json.loads(line) for line in out.getvalue().splitlines()]


def test_bad_input_gets_the_tracking_api_error_shape_and_tracking_still_needs_its_write_key(
    local_stack: LocalStack,
) -> None:
    refused = admin(local_stack, "POST", "/journeys/validate", data=b"id: [", headers={"content-type": "text/yaml"})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "invalid_journey"

    missing = admin(local_stack, "POST", "/journeys/no-such-journey/pause")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "unknown_journey")

    anonymous = requests.post(f"{local_stack.api_url}/v1/track", json={"event": "x"}, timeout=TIMEOUT)
    assert anonymous.status_code == 401
