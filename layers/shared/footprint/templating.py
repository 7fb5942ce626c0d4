"""Liquid rendering of message content: the journey's words, personalised for one visitor.

Every string in a send step's ``content`` is a Liquid template (python-liquid). Templates see:

- ``profile``: ``profile_id``, ``name``, ``first_name``, ``email``, ``phone``, ``timezone``,
  ``lifecycle_stage``, ``tags``, ``traits`` (everything the site reported), ``last_viewed_product``;
- ``context``: the message's context as evaluate wrote it (e.g. ``context.product.name``);
- ``product``: shorthand for ``context.product``, else the profile's last viewed product;
- ``message``: ``id`` (the idempotency key), ``journey_id``, ``journey_version``, ``node_id``,
  ``channel``, ``enrollment_id``.

A missing variable renders as nothing (``{{ profile.name | default: "bạn" }}`` gives a fallback), so a
visitor without a name still gets the message. Unknown filters and syntax errors are mistakes in the
journey: they raise :class:`TemplateError` and the message is recorded as failed with the reason.
Values under a key named ``html`` (or ending in ``_html``) are HTML-escaped as they are inserted,
because traits come from the visitor's browser.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from liquid import Environment
from liquid.exceptions import LiquidError

from footprint.models.messages import OutgoingMessage
from footprint.models.profile import Profile


class TemplateError(Exception):
    """A template in the message content cannot be rendered (syntax, unknown filter, limits)."""


class _BoundedEnvironment(Environment):
    # A template is authored by the team, but its data comes from visitors: keep output bounded.
    loop_iteration_limit = 10_000
    output_stream_limit = 256 * 1024


class ContentRenderer:
    """Renders the string values of a content mapping, recursively; other values pass through."""

    def __init__(self) -> None:
        self._text = _BoundedEnvironment()
        self._html = _BoundedEnvironment(autoescape=True)

    def render(self, content: Mapping[str, Any], variables: Mapping[str, Any]) -> dict[str, Any]:
        rendered: dict[str, Any] = self._render_value(content, variables, html=False)
        return rendered

    def render_string(self, source: str, variables: Mapping[str, Any], *, html: bool = False) -> str:
        environment = self._html if html else self._text
        try:
            return str(environment.from_string(source).render(**variables))
        except LiquidError as error:
            # The first line names the problem; the rest is a source excerpt.
            raise TemplateError(str(error).splitlines()[0]) from error

    def _render_value(self, value: Any, variables: Mapping[str, Any], *, html: bool) -> Any:
        if isinstance(value, str):
            return self.render_string(value, variables, html=html)
        if isinstance(value, Mapping):
            rendered: dict[str, Any] = {}
            for key, item in value.items():
                rendered[key] = self._render_value(item, variables, html=html or _is_html_key(key))
            return rendered
        if isinstance(value, list):
            return [self._render_value(item, variables, html=html) for item in value]
        return value


def template_variables(message: OutgoingMessage, profile: Profile) -> dict[str, Any]:
    """What a template may refer to (see the module docstring)."""
    dumped = profile.model_dump(mode="json", include={"traits", "last_viewed_product"})
    traits, last_product = dumped["traits"], dumped["last_viewed_product"]
    context = message.model_dump(mode="json", include={"context"})["context"]
    product = context.get("product") if isinstance(context.get("product"), Mapping) else last_product
    return {
        "profile": {
            "profile_id": profile.profile_id,
            "name": _display_name(traits),
            # Never guessed from `name`: a Vietnamese name puts the family name first ("Nguyễn Thị Hoa").
            "first_name": traits.get("first_name") or traits.get("firstName"),
            "email": profile.email,
            "phone": profile.phone,
            "timezone": profile.timezone,
            "lifecycle_stage": profile.lifecycle_stage,
            "tags": list(profile.tags),
            "traits": traits,
            "last_viewed_product": last_product,
        },
        "context": context,
        "product": product,
        "message": {
            "id": message.idempotency_key,
            "journey_id": message.journey_id,
            "journey_version": message.journey_version,
            "node_id": message.node_id,
            "channel": message.channel,
            "enrollment_id": message.enrollment_id,
        },
    }


def _display_name(traits: Mapping[str, Any]) -> str | None:
    """The `name` trait as given; else the given name alone, which reads right in any name order."""
    for key in ("name", "first_name", "firstName"):
        value = traits.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _is_html_key(key: object) -> bool:
    return isinstance(key, str) and (key == "html" or key.endswith("_html"))
