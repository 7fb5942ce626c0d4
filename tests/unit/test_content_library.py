"""`template:` in a send node: a content file from the templates folder, inlined and checked at publish."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from footprint.models.journey import SendNode, load_journey_yaml
from footprint.services.content import JourneyContentError, inline_templates, load_checked_journey, templates_folder
from footprint_local.cli import main

ROOT = Path(__file__).resolve().parents[2]
SERVICES = (ROOT / "journeys" / "services-consult.yaml").read_text(encoding="utf-8")
REMINDER_NODE = """  web_push_reminder:
    type: send
    stage: conversion
    channel: web_push
    content:
      title: "Bạn còn quan tâm {{ trigger.name | default: 'Váy nữ phong cách hè' }}?"
      body: "Mẫu bạn vừa xem vẫn còn size. Mã TUVAN10 giảm 10% đang chờ bạn."
      url: "{{ trigger.url }}"
      icon: /static/icon-192.png
"""
TEMPLATED_NODE = """  web_push_reminder:
    type: send
    stage: conversion
    channel: web_push
    template: reminder
    content:
      icon: /static/brand.png
      vars: { code: TUVAN10 }
"""
TEMPLATE = """title: "Bạn còn quan tâm {{ trigger.name | default: 'sản phẩm này' }}?"
body: "Mã {{ vars.code }} giảm {{ vars.percent }}% đang chờ bạn."
url: "{{ trigger.url }}"
icon: /static/icon-192.png
vars: { percent: 10 }
"""


def journey_with_template(folder: Path, template: str | None = TEMPLATE) -> Path:
    assert REMINDER_NODE in SERVICES
    path = folder / "services-consult.yaml"
    path.write_text(SERVICES.replace(REMINDER_NODE, TEMPLATED_NODE), encoding="utf-8")
    if template is not None:
        (folder / "templates").mkdir()
        (folder / "templates" / "reminder.yaml").write_text(template, encoding="utf-8")
    return path


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_a_template_is_inlined_with_the_node_s_own_fields_winning_and_vars_merged(tmp_path: Path) -> None:
    path = journey_with_template(tmp_path)

    text = inline_templates(path.read_text(encoding="utf-8"), templates_folder(path), origin="j")

    node = load_journey_yaml(text).nodes["web_push_reminder"]
    assert isinstance(node, SendNode)
    assert node.template is None
    assert node.content is not None
    assert node.content.title == "Bạn còn quan tâm {{ trigger.name | default: 'sản phẩm này' }}?"
    assert node.content.icon == "/static/brand.png"
    assert node.content.vars == {"percent": 10, "code": "TUVAN10"}


def test_validate_checks_a_template_like_inline_content(tmp_path: Path) -> None:
    path = journey_with_template(tmp_path, TEMPLATE.replace("| default:", "| defualt:"))

    status, output = run("validate", str(path))

    assert status == 1
    assert "nodes.web_push_reminder.content.title: unknown filter 'defualt'" in output


def test_a_missing_template_is_refused_with_its_node(tmp_path: Path) -> None:
    path = journey_with_template(tmp_path, template=None)

    status, output = run("validate", str(path))

    assert status == 1
    assert "nodes.web_push_reminder.template: no template 'reminder'" in output


def test_a_valid_templated_journey_validates(tmp_path: Path) -> None:
    assert run("validate", str(journey_with_template(tmp_path)))[0] == 0


def test_without_a_templates_folder_a_journey_must_carry_its_content_inline(tmp_path: Path) -> None:
    text = journey_with_template(tmp_path).read_text(encoding="utf-8")

    with pytest.raises(JourneyContentError) as refused:
        load_checked_journey(text, origin="body")

    [(location, message)] = refused.value.problems
    assert location == "nodes.web_push_reminder.template"
    assert "content inline" in message


def test_template_names_cannot_leave_the_templates_folder(tmp_path: Path) -> None:
    path = journey_with_template(tmp_path)
    path.write_text(path.read_text(encoding="utf-8").replace("template: reminder", "template: ../../etc/passwd"))

    status, output = run("validate", str(path))

    assert status == 1
    assert "no template '../../etc/passwd'" in output
