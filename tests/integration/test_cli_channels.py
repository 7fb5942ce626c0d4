"""`footprint validate` and `publish` check a journey's channels against the stack, as the admin API does.

A deployed stack is a CloudFormation stack on moto, declaring the template's channel parameters (with
the template's defaults) and outputting ConfigTableName; the local stack is a loopback server answering
/_local/stack.json as the local stack's HTTP server does.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from footprint.adapters.journey_catalog import DynamoJourneyCatalog
from footprint.models.channels import STACK_PARAMETERS
from footprint_local.cli import main as footprint_cli
from footprint_local.template import load_template
from tests.integration.conftest import Tables
from tests.unit.test_cli import SMS_JOURNEY

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CART = ROOT / "journeys" / "cart-abandonment.yaml"  # sends Zalo ZNS (and email, web push)
SERVICES = ROOT / "journeys" / "services-consult.yaml"  # onsite and web push only
ZNS_REFUSAL = (
    f"{CART}: this stack cannot send zalo_zns\n"
    "  nodes.zalo_reminder.channel: zalo_zns is not configured on this stack: set ZaloZnsSecretName to the secret "
    "holding the Zalo app's id, key and refresh token, or ZaloZnsProviderUrl to your ZNS relay's https endpoint"
)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return footprint_cli(list(argv), out=out), out.getvalue()


def deploy(name: str, config_table: str, **parameters: str) -> str:
    """A stack declaring the template's channel parameters, deployed as the README's steps do (a sender
    address) with ``parameters`` (others at the template's defaults), with the ConfigTableName output the
    CLI publishes to."""
    parameters = {"SenderEmail": "hello@shop.example.com", **parameters}
    declared = load_template().document["Parameters"]
    template = {
        "Parameters": {
            parameter: {"Type": "String", "Default": str(declared[parameter].get("Default", ""))}
            for parameter in STACK_PARAMETERS.values()
        },
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"ConfigTableName": {"Value": config_table}},
    }
    boto3.client("cloudformation").create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
    )
    return name


def published(tables: Tables) -> dict[str, list[int]]:
    return DynamoJourneyCatalog(tables.client, tables.config, cache_seconds=0).published()


# ------------------------------------------------------------------ a deployed stack


def test_validate_against_a_stack_refuses_a_journey_on_a_channel_it_has_not_turned_on(tables: Tables) -> None:
    stack = deploy("footprint-prod", tables.config)  # the README's parameters: no Zalo ZNS

    status, output = run("validate", "--stack", stack, str(SERVICES), str(CART))

    assert status == 1
    assert f"✓ {SERVICES}: services-consult" in output
    assert f"✗ {ZNS_REFUSAL}\n" in output


def test_a_stack_deployed_without_a_sender_address_refuses_email_journeys(tables: Tables) -> None:
    stack = deploy("footprint-prod", tables.config, SenderEmail="", ZaloZnsSecretName="footprint/zalo")

    status, output = run("validate", "--stack", stack, str(CART))

    assert status == 1
    assert "nodes.email_reminder.channel: email is not configured on this stack: set the SenderEmail" in output


def test_validate_without_a_stack_checks_only_the_journey(tables: Tables) -> None:
    deploy("footprint-prod", tables.config)

    status, output = run("validate", str(CART))

    assert status == 0
    assert f"✓ {CART}: cart-abandonment" in output


def test_publish_to_a_stack_refuses_such_a_journey_and_publishes_nothing(
    tables: Tables, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = deploy("footprint-prod", tables.config)

    # services-consult alone would be accepted: a refused file in the same call publishes none.
    status, _ = run("publish", "--stack", stack, str(SERVICES), str(CART))

    assert status == 1
    assert capsys.readouterr().err == f"footprint: {ZNS_REFUSAL}\n"
    assert published(tables) == {}


@pytest.mark.parametrize(
    "zns", [{"ZaloZnsSecretName": "footprint/zalo"}, {"ZaloZnsProviderUrl": "https://zns-relay.example/send"}]
)
def test_publish_to_a_stack_that_sends_zns_publishes_the_journey(tables: Tables, zns: dict[str, str]) -> None:
    stack = deploy("footprint-prod", tables.config, **zns)

    status, output = run("publish", "--stack", stack, str(CART))

    assert (status, output) == (0, "published cart-abandonment v1 (active)\n")
    assert published(tables) == {"cart-abandonment": [1]}


@pytest.mark.parametrize(
    ("sms", "accepted"),
    [
        ({}, False),
        ({"SmsProvider": "sns"}, True),
        ({"SmsProvider": "relay", "SmsProviderUrl": "https://sms-relay.example/send"}, True),
        ({"SmsProviderUrl": "https://sms-relay.example/send"}, True),
    ],
)
def test_sms_is_on_with_sns_or_a_relay_url(tables: Tables, tmp_path: Path, sms: dict[str, str], accepted: bool) -> None:
    journey = tmp_path / "sms.yaml"
    journey.write_text(SMS_JOURNEY)
    stack = deploy("footprint-prod", tables.config, **sms)

    status, output = run("validate", "--stack", stack, str(journey))

    assert status == (0 if accepted else 1)
    assert ("this stack cannot send sms" in output) is not accepted


def test_an_unknown_stack_is_one_line_and_exit_1(tables: Tables, capsys: pytest.CaptureFixture[str]) -> None:
    status, _ = run("publish", "--stack", "no-such-stack", str(SERVICES))

    assert status == 1
    assert capsys.readouterr().err.startswith("footprint: stack no-such-stack: ")
    assert published(tables) == {}


# ------------------------------------------------------------------ the local stack


class LocalStackInfo:
    """Answers GET /_local/stack.json with ``info``."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(served.info).encode() if self.path == "/_local/stack.json" else b"{}"
                self.send_response(200 if self.path == "/_local/stack.json" else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def local_stack() -> Iterator[LocalStackInfo]:
    # What the local stack's send function gets from the template's defaults.
    channels = {"sender_email": "noreply@example.com", "vapid_secret_name": "footprint/vapid"}
    served = LocalStackInfo({"channels": channels})
    yield served
    served.close()


def test_validate_against_the_local_stack_refuses_what_it_cannot_send(local_stack: LocalStackInfo) -> None:
    status, output = run("validate", str(SERVICES), str(CART), "--local", local_stack.url)

    assert status == 1
    assert f"✓ {SERVICES}: services-consult" in output
    assert f"✗ {ZNS_REFUSAL}\n" in output


def test_publish_to_the_local_stack_refuses_before_touching_its_tables(
    local_stack: LocalStackInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    # The served stack has no tables: the refusal comes first.
    status, _ = run("publish", str(CART), "--local", local_stack.url)

    assert status == 1
    assert capsys.readouterr().err == f"footprint: {ZNS_REFUSAL}\n"


def test_a_local_stack_that_does_not_say_its_channels_is_not_guessed(
    local_stack: LocalStackInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    local_stack.info = {"tables": {}}

    status, _ = run("validate", str(SERVICES), "--local", local_stack.url)

    assert status == 1
    assert "does not say which channels it sends on" in capsys.readouterr().err
