"""Liquid rendering of message content: personalisation, Vietnamese text, missing values, escaping."""

from __future__ import annotations

import pytest

from footprint.models.messages import OutgoingMessage
from footprint.models.profile import Profile
from footprint.templating import ContentRenderer, TemplateError, content_problems, template_variables
from tests.builders import T0


def message(**fields: object) -> OutgoingMessage:
    values: dict[str, object] = {
        "idempotency_key": "j1:1:e1:push1:0",
        "profile_id": "p1",
        "source_id": "demo",
        "journey_id": "view-no-cart",
        "journey_version": 3,
        "enrollment_id": "e1",
        "node_id": "push1",
        "channel": "web_push",
        "requested_at": T0,
    }
    values.update(fields)
    return OutgoingMessage.model_validate(values)


def profile(**fields: object) -> Profile:
    return Profile.model_validate({"profile_id": "p1", "source_id": "demo", **fields})


DRESS = {"name": "Váy nữ phong cách hè", "price": 350000, "url": "https://shop.example/vay-he"}


def test_vietnamese_text_is_personalised_with_profile_and_product() -> None:
    # Given a known contact who viewed the summer dress
    visitor = profile(traits={"name": "Nguyễn Thị Hoa"}, email="hoa@example.com")
    msg = message(
        context={"product": DRESS},
        content={
            "title": "Chào {{ profile.name }}, {{ product.name }} đang chờ bạn!",
            "body": "Chỉ {{ product.price }}đ — ưu đãi riêng cho bạn hôm nay.",
            "url": "{{ product.url }}?utm_source=footprint&m={{ message.id }}",
        },
    )

    # When it is rendered
    rendered = ContentRenderer().render(msg.content, template_variables(msg, visitor))

    # Then Vietnamese text, profile and product values come out intact
    assert rendered == {
        "title": "Chào Nguyễn Thị Hoa, Váy nữ phong cách hè đang chờ bạn!",
        "body": "Chỉ 350000đ — ưu đãi riêng cho bạn hôm nay.",
        "url": "https://shop.example/vay-he?utm_source=footprint&m=j1:1:e1:push1:0",
    }


def test_missing_variables_render_empty_and_default_gives_a_fallback() -> None:
    # Given an anonymous visitor with no name and no product in the message context
    content = {"title": "Chào {{ profile.name | default: 'bạn' }}!", "body": "[{{ product.name }}]"}
    msg = message(content=content)

    rendered = ContentRenderer().render(msg.content, template_variables(msg, profile()))

    assert rendered == {"title": "Chào bạn!", "body": "[]"}


def test_product_falls_back_to_the_last_viewed_product() -> None:
    visitor = profile(last_viewed_product={"name": "Áo sơ mi linen", "viewed_at": T0.isoformat()})
    msg = message(content={"body": "Bạn còn quan tâm {{ product.name }}?"})

    rendered = ContentRenderer().render(msg.content, template_variables(msg, visitor))

    assert rendered["body"] == "Bạn còn quan tâm Áo sơ mi linen?"


def test_the_name_is_never_guessed_from_a_full_name_and_given_name_is_used_alone() -> None:
    variables = template_variables(message(), profile(traits={"first_name": "Hoa", "last_name": "Nguyễn"}))

    assert variables["profile"]["name"] == "Hoa"
    assert variables["profile"]["first_name"] == "Hoa"
    full_name_only = template_variables(message(), profile(traits={"name": "Nguyễn Thị Hoa"}))
    assert full_name_only["profile"]["first_name"] is None


def test_values_are_escaped_in_html_keys_only() -> None:
    visitor = profile(traits={"name": "<script>alert(1)</script>"})
    content = {"html": "<p>Xin chào {{ profile.name }}</p>", "body": "Xin chào {{ profile.name }}"}

    rendered = ContentRenderer().render(content, template_variables(message(), visitor))

    assert rendered["html"] == "<p>Xin chào &lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert rendered["body"] == "Xin chào <script>alert(1)</script>"


def test_nested_content_is_rendered_and_other_values_pass_through() -> None:
    visitor = profile(phone="0912345678", traits={"name": "Lan"})
    content = {
        "template_id": "231",
        "template_data": {"customer_name": "{{ profile.name }}", "points": 120},
        "fields": [{"label": "Số điện thoại", "value": "{{ profile.phone }}"}],
        "ttl": 3600,
        "enabled": True,
    }

    rendered = ContentRenderer().render(content, template_variables(message(), visitor))

    assert rendered == {
        "template_id": "231",
        "template_data": {"customer_name": "Lan", "points": 120},
        "fields": [{"label": "Số điện thoại", "value": "0912345678"}],
        "ttl": 3600,
        "enabled": True,
    }


MISTAKES = ["{% if %}oops{% endif %}", "{{ profile.name | no_such_filter }}", "{{ 'a' "]


@pytest.mark.parametrize("source", MISTAKES)
def test_template_mistakes_raise_template_error(source: str) -> None:
    with pytest.raises(TemplateError):
        ContentRenderer().render({"body": source}, template_variables(message(), profile()))


def test_message_identity_is_available() -> None:
    variables = template_variables(message(channel="email"), profile())

    assert variables["message"] == {
        "id": "j1:1:e1:push1:0",
        "journey_id": "view-no-cart",
        "journey_version": 3,
        "node_id": "push1",
        "channel": "email",
        "enrollment_id": "e1",
    }


# -- `trigger` and content checks --------------------------------------------------------------------


def test_trigger_properties_render_as_the_readme_says() -> None:
    # Given the message evaluate queues for a visitor who read the summer dress
    msg = message(
        context={"trigger": DRESS, "occurrence": 1},
        content={"title": "Bạn còn quan tâm {{ trigger.name }}?", "url": "{{ trigger.url }}"},
    )

    # When it is rendered
    rendered = ContentRenderer().render(msg.content, template_variables(msg, profile()))

    # Then the product of the trigger event is in the words and the link
    assert rendered == {"title": "Bạn còn quan tâm Váy nữ phong cách hè?", "url": "https://shop.example/vay-he"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ trigger.name | shout }}", "unknown filter 'shout'"),
        ("{% if trigger.name %}open", "expected"),
        ("{{ visitor.name }}", "unknown variable 'visitor'"),
        ("{{ profile.nmae }}", "unknown variable profile.nmae"),
        ("{{ message.node }}", "unknown variable message.node"),
        ("{{ trigger.name | truncate: 'ten' }}", "truncate expected an integer"),
    ],
)
def test_content_problems_name_the_field_and_the_mistake(source: str, expected: str) -> None:
    problems = content_problems({"title": "ok {{ trigger.name }}", "fields": [{"label": source}]})

    assert [problem.field for problem in problems] == ["fields[0].label"]
    assert expected in problems[0].message, problems


def test_content_problems_accept_free_properties_and_loop_variables() -> None:
    content = {
        "title": "{{ trigger.anything.deep | default: 'x' }} {{ profile.traits.city }} {{ context.occurrence }}",
        "body": "{% for item in trigger.products %}{{ item.name }}{% endfor %}{% assign n = 2 %}{{ n }}",
        "html": "<p>{{ product.name | escape }}</p>",
    }

    assert content_problems(content) == []
