"""A journey's message content, checked before it is published and previewed as a visitor reads it.

``validate`` and ``publish`` (the CLI and the admin API) load journeys through
:func:`load_checked_journey`: every Liquid template of every send step is parsed, analysed for
unknown filters and variables, and rendered once against sample data, so a broken template is
refused with its node and field instead of failing at send time. ``simulate`` describes each
message with :func:`preview_message`, the words the visitor would read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from footprint.engine import SendMessage
from footprint.models.journey import Journey, JourneyDefinitionError, SendNode, load_journey_yaml, read_journey_yaml
from footprint.sms import sms_segments
from footprint.templating import SAMPLE_VARIABLES, ContentRenderer, TemplateError, content_problems

PREVIEW_LENGTH = 120


class JourneyContentError(JourneyDefinitionError):
    """Templates of a journey that would not render; ``problems`` holds ``(location, message)`` pairs."""

    def __init__(self, origin: str, problems: list[tuple[str, str]]) -> None:
        lines = "\n".join(f"  - {location}: {message}" for location, message in problems)
        super().__init__(f"{origin}: message content does not render:\n{lines}")
        self.problems = problems


def journey_content_problems(journey: Journey, renderer: ContentRenderer | None = None) -> list[tuple[str, str]]:
    """``(location, message)`` for every template problem, located as ``nodes.<id>.content.<field>``."""
    renderer = renderer or ContentRenderer()
    problems: list[tuple[str, str]] = []
    for node_id, node in journey.nodes.items():
        if isinstance(node, SendNode) and node.content is not None:
            content = node.content.model_dump(exclude_none=True, exclude_defaults=True)
            for problem in content_problems(content, renderer):
                problems.append((f"nodes.{node_id}.content.{problem.field}", problem.message))
    return problems


# A content library: ``template: consult-form`` in a send node is ``templates/consult-form.yaml`` beside
# the journey, its content fields (the node's own ``content`` fields win, ``vars`` merge).
TEMPLATE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
TemplateLibrary = Callable[[str], "dict[str, Any] | None"]


def templates_folder(journey_path: Path) -> TemplateLibrary:
    """The templates beside a journey file: ``<its folder>/templates/<name>.yaml``."""
    folder = journey_path.parent / "templates"

    def load(name: str) -> dict[str, Any] | None:
        path = folder / f"{name}.yaml"
        if not TEMPLATE_NAME.fullmatch(name) or not path.is_file():
            return None
        data = read_journey_yaml(path.read_text(encoding="utf-8"), origin=str(path))
        return data if isinstance(data, dict) else None

    return load


def inline_templates(yaml_text: str, templates: TemplateLibrary | None, *, origin: str) -> str:
    """The journey YAML with every ``template:`` replaced by the template's content, so the published
    version is self-contained (the engine and send never read files); unchanged without templates.
    Raises JourneyContentError naming each send node whose template is missing."""
    import yaml

    data = read_journey_yaml(yaml_text, origin=origin)
    nodes = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(nodes, dict):
        return yaml_text
    problems: list[tuple[str, str]] = []
    changed = False
    for node_id, node in nodes.items():
        if not isinstance(node, dict) or node.get("type") != "send" or not node.get("template"):
            continue
        name = str(node["template"])
        found = templates(name) if templates is not None and TEMPLATE_NAME.fullmatch(name) else None
        if found is None:
            problems.append((f"nodes.{node_id}.template", _missing_template(name, templates is not None)))
            continue
        inline = node.get("content")
        own: dict[str, Any] = inline if isinstance(inline, dict) else {}
        merged = {**found, **own, "vars": {**(found.get("vars") or {}), **(own.get("vars") or {})}}
        if not merged["vars"]:
            del merged["vars"]
        node["content"] = merged
        del node["template"]
        changed = True
    if problems:
        raise JourneyContentError(origin, problems)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False) if changed else yaml_text


def _missing_template(name: str, have_library: bool) -> str:
    if not have_library:
        return (
            f"template {name!r} is read from templates/ beside the journey by the CLI (footprint validate, "
            "publish); this route takes the journey with its content inline"
        )
    return f"no template {name!r}: expected templates/{name}.yaml beside the journey (lowercase, digits, - and _)"


def load_checked_journey(yaml_text: str, *, origin: str, templates: TemplateLibrary | None = None) -> Journey:
    """The journey, or JourneyDefinitionError for its definition or JourneyContentError for its content.
    ``template:`` references are loaded from ``templates`` and checked like inline content; without a
    library (the admin API takes one YAML body) a journey must carry its content inline."""
    journey = load_journey_yaml(yaml_text, origin=origin)
    if any(isinstance(node, SendNode) and node.template for node in journey.nodes.values()):
        journey = load_journey_yaml(inline_templates(yaml_text, templates, origin=origin), origin=origin)
    problems = journey_content_problems(journey)
    if problems:
        raise JourneyContentError(origin, problems)
    return journey


def preview_message(send: SendMessage, renderer: ContentRenderer | None = None) -> str:
    """The message's headline as the visitor reads it: its title (or subject, body), rendered with the
    trigger's properties and a sample visitor, at most PREVIEW_LENGTH characters."""
    if send.content is None:
        return f"template {send.template}"
    content = send.content
    source = content.title or content.subject or content.body or content.template_id or content.url or ""
    variables = {
        **SAMPLE_VARIABLES,
        "trigger": send.trigger_properties,
        "context": {"trigger": send.trigger_properties, "occurrence": send.occurrence},
        "product": send.trigger_properties or SAMPLE_VARIABLES["product"],
        "vars": dict(content.vars),
        "message": {
            "id": send.idempotency_key,
            "journey_id": send.journey_id,
            "journey_version": send.journey_version,
            "node_id": send.node_id,
            "channel": send.channel,
            "enrollment_id": send.enrollment_id,
        },
    }
    try:
        text = (renderer or ContentRenderer()).render_string(source, variables)
    except TemplateError as error:
        text = f"(does not render: {error})"
    return text if len(text) <= PREVIEW_LENGTH else text[: PREVIEW_LENGTH - 1] + "…"


def journey_notes(journey: Journey, renderer: ContentRenderer | None = None) -> list[tuple[str, str]]:
    """What a marketer should know before publishing: how many billed parts each SMS is, rendered for a
    sample visitor (a Vietnamese SMS with diacritics is 70 characters a part, not 160)."""
    renderer = renderer or ContentRenderer()
    notes: list[tuple[str, str]] = []
    for node_id, node in journey.nodes.items():
        if isinstance(node, SendNode) and node.channel == "sms" and node.content and node.content.body:
            try:
                text = renderer.render_string(node.content.body, SAMPLE_VARIABLES)
            except TemplateError:
                continue  # reported as a problem
            parts = sms_segments(text)
            plural = "part" if parts.parts == 1 else "parts"
            notes.append(
                (
                    f"nodes.{node_id}.content.body",
                    f"SMS of {parts.parts} {plural} ({parts.encoding}, "
                    f"{parts.characters} characters for a sample visitor)",
                )
            )
    return notes
