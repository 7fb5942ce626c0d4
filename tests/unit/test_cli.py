"""The `footprint` CLI offline: validate and simulate (publish/list/pause are tested on the local stack)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from footprint_local.cli import main

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "journeys" / "services-consult.yaml"
EXAMPLE_EVENTS = ROOT / "journeys" / "examples" / "services-consult.jsonl"


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_validate_accepts_every_shipped_journey() -> None:
    files = sorted(str(p) for p in (ROOT / "journeys").glob("*.yaml"))
    status, output = run("validate", *files)
    assert status == 0
    assert output.count("✓") == len(files) >= 4


def test_validate_reports_a_broken_journey(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(SERVICES.read_text().replace("next: consult_form", "next: no_such_node"))
    status, output = run("validate", str(broken))
    assert status == 1
    assert "no_such_node" in output


def test_simulate_prints_the_reference_timeline() -> None:
    status, output = run("simulate", str(SERVICES), str(EXAMPLE_EVENTS), "--json")
    assert status == 0
    sent = [json.loads(line) for line in output.splitlines() if json.loads(line)["outcome"] == "sent"]
    assert [(entry["at"][11:19], entry["channel"]) for entry in sent] == [
        ("02:00:00", "onsite_form"),  # at once: read 16 s, nothing added to the cart meanwhile
        ("02:00:35", "onsite_push"),  # 10 s after the form was dismissed at 02:00:25
        ("02:00:00", "web_push"),  # one day after the behaviour (next day)
        ("12:30:00", "web_push"),  # the stronger one, the evening after the ignored push
    ]
    assert [entry["at"][:10] for entry in sent] == ["2026-11-23", "2026-11-23", "2026-11-24", "2026-11-25"]


def test_simulate_is_deterministic() -> None:
    first = run("simulate", str(SERVICES), str(EXAMPLE_EVENTS))
    second = run("simulate", str(SERVICES), str(EXAMPLE_EVENTS))
    assert first == second


def test_simulate_reports_a_bad_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    events = tmp_path / "events.jsonl"
    events.write_text('{"at": "2026-11-23T02:00:00Z"}\n')
    status, _ = run("simulate", str(SERVICES), str(events))
    assert status == 1
    assert "line 1" in capsys.readouterr().err


def test_vapid_keys_are_a_usable_pair() -> None:
    import base64

    from cryptography.hazmat.primitives import serialization
    from py_vapid import Vapid

    status, output = run("vapid-keys", "--subject", "mailto:hello@shop.example.com")
    assert status == 0
    secret = json.loads(output)
    vapid = Vapid.from_pem(secret["private_key_pem"].encode())
    point = vapid.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert base64.urlsafe_b64encode(point).decode().rstrip("=") == secret["public_key"]
    assert secret["subject"] == "mailto:hello@shop.example.com"


def test_vapid_keys_need_a_contact_url() -> None:
    assert run("vapid-keys", "--subject", "hello")[0] == 1


def test_validate_refuses_a_template_that_would_not_render(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(SERVICES.read_text().replace("{{ trigger.name | default:", "{{ trigger.name | defualt:", 1))

    status, output = run("validate", str(broken))

    assert status == 1
    assert "nodes.consult_form.content.title: unknown filter 'defualt'" in output


def test_simulate_prints_each_message_as_the_visitor_reads_it() -> None:
    status, output = run("simulate", str(SERVICES), str(EXAMPLE_EVENTS))

    assert status == 0
    assert "onsite_form: Nhận tư vấn miễn phí và ưu đãi riêng cho Váy nữ phong cách hè" in output
    assert "{{" not in output


SMS_JOURNEY = """
id: sms-reminder
name: SMS reminder
status: draft
version: 1
nodes:
  added:
    type: trigger
    event: add_to_cart
    next: remind
  remind:
    type: send
    channel: sms
    content:
      sender: SHOPVN
      body: >-
        Chị {{ profile.name }} ơi, {{ trigger.name }} trong giỏ hàng đang chờ chị.
        Mã HE20 giảm 20% đến 23:59 hôm nay.
    next: done
  done:
    type: exit
"""


def test_validate_tells_how_many_parts_an_sms_is_billed_as(tmp_path: Path) -> None:
    journey = tmp_path / "sms.yaml"
    journey.write_text(SMS_JOURNEY)

    status, output = run("validate", str(journey))

    assert status == 0
    assert "nodes.remind.content.body: SMS of 2 parts (UCS-2," in output
