"""A journey's message content, checked before it is published and previewed as a visitor reads it.

``validate`` and ``publish`` (the CLI and the admin API) load journeys through
:func:`load_checked_journey`: every Liquid template of every send step is parsed, analysed for
unknown filters and variables, and rendered once against sample data, so a broken template is
refused with its node and field instead of failing at send time. ``simulate`` describes each
message with :func:`preview_message`, the words the visitor would read.
"""

from __future__ import annotations

from footprint.engine import SendMessage
from footprint.models.journey import Journey, JourneyDefinitionError, SendNode, load_journey_yaml
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


def load_checked_journey(yaml_text: str, *, origin: str) -> Journey:
    """The journey, or JourneyDefinitionError for its definition or JourneyContentError for its content."""
    journey = load_journey_yaml(yaml_text, origin=origin)
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
