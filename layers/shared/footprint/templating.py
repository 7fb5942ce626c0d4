"""Liquid rendering of message content: the journey's words, personalised for one visitor.

Every string in a send step's ``content`` is a Liquid template (python-liquid). Templates see:

- ``profile``: ``profile_id``, ``name``, ``first_name``, ``email``, ``phone``, ``timezone``,
  ``lifecycle_stage``, ``tags``, ``traits`` (everything the site reported), ``last_viewed_product``;
- ``trigger``: the properties of the event that started the journey (``{{ trigger.name }}``, the
  product being viewed, ``{{ trigger.url }}``); also at ``context.trigger``;
- ``context``: the message's context as evaluate wrote it (``trigger``, ``occurrence``);
- ``product``: shorthand for ``context.product``, else the profile's last viewed product;
- ``message``: ``id`` (the idempotency key), ``journey_id``, ``journey_version``, ``node_id``,
  ``channel``, ``enrollment_id``;
- ``vars``: the step's ``content.vars`` (merged with its ``template:``'s), free values for its fields.

A missing value renders as nothing (``{{ profile.name | default: "bạn" }}`` gives a fallback), so a
visitor without a name still gets the message. Unknown filters, unknown variables and syntax errors
are mistakes in the journey: :func:`content_problems` finds them when a journey is validated or
published (so they never reach a visitor), and at send time they raise :class:`TemplateError` and the
message is recorded as failed with the reason.
Values under a key named ``html`` (or ending in ``_html``) are HTML-escaped as they are inserted,
because traits come from the visitor's browser.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from footprint.models.messages import OutgoingMessage
from footprint.models.profile import Profile

if TYPE_CHECKING:
    from liquid import Environment

# A template is authored by the team, but its data comes from visitors: keep output bounded.
LOOP_ITERATION_LIMIT = 10_000
OUTPUT_STREAM_LIMIT = 256 * 1024


class TemplateError(Exception):
    """A template in the message content cannot be rendered (syntax, unknown filter, limits)."""


@cache
def _environments() -> tuple[Environment, Environment]:
    """Liquid's text and HTML (autoescaping) environments, built on first use: python-liquid takes about a
    third of a boto3 import to load, and a function that renders nothing (or only plain text) never needs it."""
    from liquid import Environment

    class BoundedEnvironment(Environment):
        loop_iteration_limit = LOOP_ITERATION_LIMIT
        output_stream_limit = OUTPUT_STREAM_LIMIT

    return BoundedEnvironment(), BoundedEnvironment(autoescape=True)


def _is_plain_text(source: str) -> bool:
    """No Liquid markup (every tag, output and comment opens with ``{``): it renders as itself."""
    return "{" not in source and len(source.encode()) <= OUTPUT_STREAM_LIMIT


class ContentRenderer:
    """Renders the string values of a content mapping, recursively; other values pass through."""

    def render(self, content: Mapping[str, Any], variables: Mapping[str, Any]) -> dict[str, Any]:
        rendered: dict[str, Any] = self._render_value(content, variables, html=False)
        return rendered

    def render_string(self, source: str, variables: Mapping[str, Any], *, html: bool = False) -> str:
        if _is_plain_text(source):
            return source
        from liquid.exceptions import LiquidError

        text, html_environment = _environments()
        environment = html_environment if html else text
        try:
            return str(environment.from_string(source).render(**variables))
        except LiquidError as error:
            # The first line names the problem; the rest is a source excerpt.
            raise TemplateError(str(error).splitlines()[0]) from error

    def check_string(self, source: str, *, html: bool = False) -> list[str]:
        """What is wrong with one template (empty when it is fine): see :func:`content_problems`."""
        from liquid.exceptions import LiquidError

        text, html_environment = _environments()
        environment = html_environment if html else text
        try:
            template = environment.from_string(source)
            analysis = template.analyze()
        except LiquidError as error:
            return [str(error).splitlines()[0]]
        problems = [f"unknown filter {name!r}" for name in analysis.filters if name not in environment.filters]
        for root, uses in analysis.globals.items():
            if root not in KNOWN_VARIABLES:
                known = ", ".join(sorted(KNOWN_VARIABLES))
                problems.append(f"unknown variable {root!r} (templates know {known})")
                continue
            offered = KNOWN_VARIABLES[root]
            for use in uses:
                key = use.segments[1] if len(use.segments) > 1 else None
                if offered is not None and isinstance(key, str) and key not in offered:
                    problems.append(f"unknown variable {root}.{key} ({root} has {', '.join(sorted(offered))})")
        if not problems:
            try:
                template.render(**SAMPLE_VARIABLES)
            except LiquidError as error:
                problems.append(str(error).splitlines()[0])
        return list(dict.fromkeys(problems))

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
        "trigger": context.get("trigger") if isinstance(context.get("trigger"), Mapping) else {},
        "context": context,
        "product": product,
        "vars": message.content.get("vars") if isinstance(message.content.get("vars"), Mapping) else {},
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


# -- checking a journey's content before it is published ------------------------------------------

# What each root variable offers (None: any key below it, e.g. the trigger event's properties).
KNOWN_VARIABLES: dict[str, frozenset[str] | None] = {
    "profile": frozenset(
        {
            "profile_id",
            "name",
            "first_name",
            "email",
            "phone",
            "timezone",
            "lifecycle_stage",
            "tags",
            "traits",
            "last_viewed_product",
        }
    ),
    "message": frozenset({"id", "journey_id", "journey_version", "node_id", "channel", "enrollment_id"}),
    "trigger": None,
    "context": None,
    "product": None,
    # The step's own `content.vars` (and its template's), e.g. an offer code shared by several fields.
    "vars": None,
}

# Stand-in values a template is rendered against when it is checked: a visitor reading a product.
SAMPLE_VARIABLES: dict[str, Any] = {
    "profile": {
        "profile_id": "p-sample",
        "name": "Nguyễn Thị Hoa",
        "first_name": "Hoa",
        "email": "hoa@example.com",
        "phone": "+84912345678",
        "timezone": "Asia/Ho_Chi_Minh",
        "lifecycle_stage": "lead",
        "tags": ["vip"],
        "traits": {"name": "Nguyễn Thị Hoa"},
        "last_viewed_product": {"product_id": "vay-nu-he"},
    },
    "trigger": {
        "product_id": "vay-nu-he",
        "name": "Váy nữ phong cách hè",
        "url": "https://shop.example.com/vay-nu-he",
        "image": "https://shop.example.com/vay-nu-he.jpg",
        "price": 350000,
        "currency": "VND",
        "dwell_seconds": 15,
    },
    "context": {"trigger": {}, "occurrence": 1},
    "product": {"product_id": "vay-nu-he", "name": "Váy nữ phong cách hè", "price": 350000},
    "vars": {},
    "message": {
        "id": "sample",
        "journey_id": "sample",
        "journey_version": 1,
        "node_id": "sample",
        "channel": "web_push",
        "enrollment_id": "sample",
    },
}
SAMPLE_VARIABLES["context"]["trigger"] = SAMPLE_VARIABLES["trigger"]


@dataclass(frozen=True)
class ContentProblem:
    """One template that would not render: ``field`` is its path in the content (``fields[0].label``)."""

    field: str
    message: str


def content_problems(content: Mapping[str, Any], renderer: ContentRenderer | None = None) -> list[ContentProblem]:
    """Every syntax error, unknown filter and unknown variable in ``content``'s templates, each also
    rendered once against :data:`SAMPLE_VARIABLES` (which catches what analysis cannot, such as a
    filter given the wrong arguments)."""
    renderer = renderer or ContentRenderer()
    problems: list[ContentProblem] = []
    for path, source, html in _templates(content, "", html=False):
        problems.extend(ContentProblem(path, message) for message in renderer.check_string(source, html=html))
    return problems


def _templates(value: Any, path: str, *, html: bool) -> Iterator[tuple[str, str, bool]]:
    if isinstance(value, str):
        if "{" in value:
            yield path, value, html
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _templates(item, f"{path}.{key}" if path else str(key), html=html or _is_html_key(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _templates(item, f"{path}[{index}]", html=html)
