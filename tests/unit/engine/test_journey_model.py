"""Journey definitions: durations, conditions, node rules, graph validation, YAML, JSON Schema."""

from __future__ import annotations

import json
from datetime import time, timedelta
from typing import Any

import pytest

from footprint.models.journey import (
    ConditionNode,
    Journey,
    JourneyDefinitionError,
    SendNode,
    WaitNode,
    journey_json_schema,
    load_journey_yaml,
    parse_journey,
    read_journey_yaml,
    render_journey_json_schema,
)
from footprint.models.timing import format_duration, parse_duration
from tests.unit.engine.builders import EXIT, JOURNEYS_DIR, flow, journey, web_push


def problems_of(nodes: dict[str, Any], **fields: Any) -> str:
    with pytest.raises(JourneyDefinitionError) as caught:
        parse_journey({"id": "j", "name": "J", "version": 1, "nodes": nodes, **fields})
    return str(caught.value)


TRIGGER = {"type": "trigger", "event": "product_viewed", "next": "done"}


class TestDurations:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("PT10S", timedelta(seconds=10)),
            ("P1D", timedelta(days=1)),
            ("P1DT12H", timedelta(days=1, hours=12)),
            ("PT1H30M", timedelta(hours=1, minutes=30)),
            ("P2W", timedelta(weeks=2)),
            ("PT0.5S", timedelta(milliseconds=500)),
            ("10s", timedelta(seconds=10)),
            ("15m", timedelta(minutes=15)),
            ("2h", timedelta(hours=2)),
            ("1d", timedelta(days=1)),
            ("2w", timedelta(weeks=2)),
            ("1h30m", timedelta(hours=1, minutes=30)),
            ("1d 12h", timedelta(days=1, hours=12)),
            (90, timedelta(seconds=90)),
        ],
    )
    def test_parses(self, text: object, expected: timedelta) -> None:
        assert parse_duration(text) == expected

    @pytest.mark.parametrize("text", ["", "P", "PT", "10", "ten seconds", "1x", "P1DT", True, None])
    def test_rejects(self, text: object) -> None:
        with pytest.raises(ValueError, match="duration"):
            parse_duration(text)

    @pytest.mark.parametrize("text", ["P1M", "P1Y", "P1Y2M"])
    def test_months_and_years_are_refused_with_a_reason(self, text: str) -> None:
        with pytest.raises(ValueError, match="no fixed length"):
            parse_duration(text)

    @pytest.mark.parametrize(
        ("duration", "text"),
        [
            (timedelta(seconds=10), "PT10S"),
            (timedelta(days=1), "P1D"),
            (timedelta(days=1, hours=2, minutes=30), "P1DT2H30M"),
            (timedelta(0), "PT0S"),
        ],
    )
    def test_formats_as_iso(self, duration: timedelta, text: str) -> None:
        assert format_duration(duration) == text
        assert parse_duration(text) == duration

    def test_zero_or_negative_waits_are_refused(self) -> None:
        message = problems_of({"t": {**TRIGGER, "next": "w"}, "w": {"type": "wait", "duration": "0s", "next": "done"}})
        assert "nodes.w.wait.duration" in message
        assert "longer than zero" in message

    def test_durations_serialise_back_to_iso(self) -> None:
        parsed = flow(("w", {"type": "wait", "duration": "1d 12h"}))
        assert parsed.model_dump(mode="json")["nodes"]["w"]["duration"] == "P1DT12H"


class TestConditions:
    def test_in_needs_a_list(self) -> None:
        message = problems_of({**_trigger_where({"property": "city", "op": "in", "value": "Hà Nội"}), "done": EXIT})
        assert "op 'in' needs a list" in message

    def test_ordering_needs_a_comparable_value(self) -> None:
        message = problems_of({**_trigger_where({"property": "price", "op": "gt", "value": None}), "done": EXIT})
        assert "op 'gt' needs a number" in message

    def test_exists_takes_a_boolean(self) -> None:
        message = problems_of({**_trigger_where({"property": "price", "op": "exists", "value": "yes"}), "done": EXIT})
        assert "'exists' takes value true" in message

    def test_unknown_operator(self) -> None:
        message = problems_of({**_trigger_where({"property": "price", "op": "between", "value": 1}), "done": EXIT})
        assert "nodes.t.trigger.where.0.op" in message

    def test_event_names_are_canonical(self) -> None:
        parsed = journey({"t": {"type": "trigger", "event": "Product Viewed", "next": "done"}, "done": EXIT})
        assert parsed.trigger.event == "product_viewed"

    def test_match_property_accepts_one_key_or_a_list(self) -> None:
        parsed = flow(
            trigger={"unless": {"event": "add_to_cart", "within": "10s", "match_property": "product_id"}},
        )
        assert parsed.trigger.unless is not None
        assert parsed.trigger.unless.match_property == ["product_id"]


def _trigger_where(condition: dict[str, Any]) -> dict[str, Any]:
    return {"t": {**TRIGGER, "where": [condition]}}


class TestNodes:
    def test_an_email_is_marketing_unless_marked_transactional_with_its_options(self) -> None:
        email = {
            "type": "send",
            "channel": "email",
            "content": {
                "subject": "Đơn hàng #{{ trigger.order_id }}",
                "preheader": "Cảm ơn bạn đã mua hàng",
                "text": "Đơn hàng đã được xác nhận.",
                "from_name": "Váy Hè Shop",
                "reply_to": "cskh@shop.example.com",
            },
        }
        parsed = flow(("promo", email), ("order", {**email, "category": "transactional"}))
        assert [parsed.nodes[name].category for name in ("promo", "order")] == ["marketing", "transactional"]  # type: ignore[union-attr]
        assert "category" in problems_of(
            {"t": {**TRIGGER, "next": "s"}, "s": {**email, "category": "spam", "next": "done"}, "done": EXIT}
        )
        bad_reply_to = {**email, "content": {**email["content"], "reply_to": "not an address"}, "next": "done"}
        assert "reply_to" in problems_of({"t": {**TRIGGER, "next": "s"}, "s": bad_reply_to, "done": EXIT})

    def test_a_wait_needs_a_duration_or_a_time(self) -> None:
        message = problems_of({"t": {**TRIGGER, "next": "w"}, "w": {"type": "wait", "next": "done"}, "done": EXIT})
        assert "a wait needs a duration" in message

    def test_wait_until_local_time(self) -> None:
        parsed = flow(("w", {"type": "wait", "until_local_time": "09:30"}))
        node = parsed.nodes["w"]
        assert isinstance(node, WaitNode)
        assert node.until_local_time == time(9, 30)

    @pytest.mark.parametrize("value", ["9h", "25:00", 540])
    def test_bad_times_of_day(self, value: object) -> None:
        message = problems_of(
            {
                "t": {**TRIGGER, "next": "w"},
                "w": {"type": "wait", "until_local_time": value, "next": "done"},
                "done": EXIT,
            }
        )
        assert "is not a time of day" in message

    @pytest.mark.parametrize(
        ("channel", "content", "explanation"),
        [
            ("web_push", {"body": "no title"}, "a web push needs content.title"),
            ("email", {"body": "no subject"}, "an email needs content.subject"),
            ("sms", {"title": "no body"}, "an SMS needs content.body"),
            ("onsite_form", {"title": "no fields"}, "an onsite form needs content.fields"),
            ("onsite_push", {"url": "/"}, "an onsite push needs content.title or content.body"),
            ("zalo_zns", {"body": "x"}, "needs content.template_id"),
            ("webhook", {"body": "x"}, "a webhook needs content.url"),
        ],
    )
    def test_send_content_fits_the_channel(self, channel: str, content: dict[str, Any], explanation: str) -> None:
        message = problems_of(
            {
                "t": {**TRIGGER, "next": "s"},
                "s": {"type": "send", "channel": channel, "content": content, "next": "done"},
                "done": EXIT,
            }
        )
        assert explanation in message

    def test_a_template_file_replaces_inline_content(self) -> None:
        parsed = flow(("s", {"type": "send", "channel": "email", "template": "templates/cart.liquid"}))
        node = parsed.nodes["s"]
        assert isinstance(node, SendNode)
        assert node.template == "templates/cart.liquid"
        assert node.content is None

    def test_a_send_needs_content_or_template(self) -> None:
        message = problems_of(
            {"t": {**TRIGGER, "next": "s"}, "s": {"type": "send", "channel": "sms", "next": "done"}, "done": EXIT}
        )
        assert "needs content or a template" in message

    def test_unknown_channel(self) -> None:
        message = problems_of(
            {"t": {**TRIGGER, "next": "s"}, "s": {**web_push(), "channel": "fax", "next": "done"}, "done": EXIT}
        )
        assert "nodes.s.send.channel" in message

    def test_unknown_fields_are_typos(self) -> None:
        message = problems_of({"t": {**TRIGGER, "nxt": "done"}, "done": EXIT})
        assert "nodes.t.trigger.nxt" in message
        assert "Extra inputs are not permitted" in message

    def test_unknown_node_type(self) -> None:
        message = problems_of({"t": TRIGGER, "x": {"type": "teleport"}, "done": EXIT})
        assert "nodes.x" in message
        assert "teleport" in message

    def test_an_update_must_change_something(self) -> None:
        message = problems_of({"t": {**TRIGGER, "next": "u"}, "u": {"type": "update", "next": "done"}, "done": EXIT})
        assert "an update needs" in message

    def test_split_weights_must_be_positive(self) -> None:
        message = problems_of(
            {
                "t": {**TRIGGER, "next": "s"},
                "s": {"type": "split", "branches": [{"name": "a", "weight": 0, "next": "done"}]},
                "done": EXIT,
            }
        )
        assert "nodes.s.split.branches.0.weight" in message
        assert "greater than 0" in message

    def test_split_branch_names_are_distinct(self) -> None:
        message = problems_of(
            {
                "t": {**TRIGGER, "next": "s"},
                "s": {
                    "type": "split",
                    "branches": [
                        {"name": "a", "weight": 1, "next": "done"},
                        {"name": "a", "weight": 1, "next": "done"},
                    ],
                },
                "done": EXIT,
            }
        )
        assert "branch names must be distinct" in message

    def test_condition_kinds(self) -> None:
        parsed = flow(
            (
                "c",
                {
                    "type": "condition",
                    "conditions": [
                        {"kind": "profile", "attribute": "city", "value": "Hà Nội"},
                        {"kind": "event_history", "event": "purchase", "within": "P30D", "min_count": 2},
                        {"kind": "reachable", "channel": "email"},
                        {"kind": "trigger", "property": "price", "op": "gte", "value": 500000},
                    ],
                    "match": "any",
                    "yes": "done",
                    "no": "done",
                },
            )
        )
        node = parsed.nodes["c"]
        assert isinstance(node, ConditionNode)
        assert [check.kind for check in node.conditions] == ["profile", "event_history", "reachable", "trigger"]


class TestGraph:
    def test_unknown_next(self) -> None:
        message = problems_of({"t": {**TRIGGER, "next": "nowhere"}, "done": EXIT})
        assert "node 't': next 'nowhere' is not a node of this journey (t, done)" in message

    def test_exactly_one_trigger(self) -> None:
        assert "exactly one trigger node (found 0" in problems_of({"a": EXIT, "b": EXIT})
        assert "exactly one trigger node (found 2" in problems_of({"t1": TRIGGER, "t2": TRIGGER, "done": EXIT})

    def test_no_edge_back_to_the_trigger(self) -> None:
        message = problems_of({"t": {**TRIGGER, "next": "w"}, "w": {"type": "wait", "duration": "1d", "next": "t"}})
        assert "leads back to the trigger 't'" in message

    def test_unreachable_nodes(self) -> None:
        message = problems_of({"t": TRIGGER, "done": EXIT, "orphan": EXIT, "island": web_push() | {"next": "orphan"}})
        assert "nodes ['orphan', 'island'] cannot be reached from the trigger 't'" in message

    def test_a_loop_without_a_wait(self) -> None:
        message = problems_of(
            {
                "t": {**TRIGGER, "next": "push"},
                "push": {**web_push(), "next": "check"},
                "check": {
                    "type": "condition",
                    "conditions": [{"kind": "reachable", "channel": "web_push"}],
                    "yes": "push",
                    "no": "done",
                },
                "done": EXIT,
            }
        )
        assert "the loop check -> push -> check never waits" in message

    def test_a_loop_with_a_wait_is_fine(self) -> None:
        parsed = journey(
            {
                "t": {**TRIGGER, "next": "push"},
                "push": {**web_push(), "next": "later"},
                "later": {"type": "wait", "duration": "P7D", "next": "check"},
                "check": {
                    "type": "condition",
                    "conditions": [{"kind": "reachable", "channel": "web_push"}],
                    "yes": "push",
                    "no": "done",
                },
                "done": EXIT,
            }
        )
        assert set(parsed.nodes) == {"t", "push", "later", "check", "done"}

    def test_match_message_names_a_send_node(self) -> None:
        message = problems_of(
            {
                "t": {**TRIGGER, "next": "w"},
                "w": {
                    "type": "wait_for",
                    "event": "message_clicked",
                    "match_message": "done",
                    "timeout": "1d",
                    "happened": "done",
                    "timed_out": "done",
                },
                "done": EXIT,
            }
        )
        assert "match_message 'done' is not a send node" in message

    def test_node_ids_are_slugs(self) -> None:
        message = problems_of({"t": {**TRIGGER, "next": "Done Now"}, "Done Now": EXIT})
        assert "nodes.Done Now" in message

    def test_journey_ids_are_slugs(self) -> None:
        message = problems_of({"t": TRIGGER, "done": EXIT}, id="Services Consult")
        assert "id: String should match pattern" in message


class TestJourneyRules:
    def test_defaults(self) -> None:
        parsed = flow()
        assert parsed.status == "active"
        assert parsed.re_entry.policy == "once"
        assert parsed.default_timezone == "UTC"
        assert parsed.goal is None
        assert parsed.quiet_hours is None

    def test_unknown_timezone(self) -> None:
        message = problems_of({"t": TRIGGER, "done": EXIT}, default_timezone="Mars/Olympus")
        assert "not an IANA time zone" in message

    def test_quiet_hours_must_span_time(self) -> None:
        message = problems_of({"t": TRIGGER, "done": EXIT}, quiet_hours={"start": "21:00", "end": "21:00"})
        assert "start and end must differ" in message

    def test_re_entry_policies(self) -> None:
        assert flow(re_entry={"policy": "once_per", "period": "P30D"}).re_entry.policy == "once_per"
        every = flow(re_entry={"policy": "every_time", "cooldown": "1h"}).re_entry
        assert every.policy == "every_time"
        assert "re_entry" in problems_of({"t": TRIGGER, "done": EXIT}, re_entry={"policy": "sometimes"})


class TestYaml:
    def test_yes_no_keys_and_unquoted_times_survive(self) -> None:
        text = """
id: yaml-check
name: YAML
version: 2
status: active
quiet_hours: {start: 21:30, end: 08:00}
nodes:
  t: {type: trigger, event: product_viewed, next: c}
  c:
    type: condition
    conditions: [{kind: profile, attribute: vip, value: true}]
    yes: w
    no: done
  w: {type: wait, until_local_time: 19:30, next: done}
  done: {type: exit}
"""
        parsed = load_journey_yaml(text)
        condition = parsed.nodes["c"]
        assert isinstance(condition, ConditionNode)
        assert (condition.yes, condition.no) == ("w", "done")
        assert condition.conditions[0].value is True  # type: ignore[union-attr]
        assert parsed.quiet_hours is not None
        assert (parsed.quiet_hours.start, parsed.quiet_hours.end) == (time(21, 30), time(8, 0))
        wait = parsed.nodes["w"]
        assert isinstance(wait, WaitNode)
        assert wait.until_local_time == time(19, 30)

    def test_numbers_stay_numbers(self) -> None:
        parsed = load_journey_yaml(
            """
id: numbers
name: N
version: 1
nodes:
  t:
    type: trigger
    event: product_viewed
    where: [{property: dwell_seconds, op: gte, value: 15}, {property: ratio, op: lt, value: 0.5}]
    next: done
  done: {type: exit}
"""
        )
        values = [condition.value for condition in parsed.trigger.where]
        assert values == [15, 0.5]

    def test_broken_yaml(self) -> None:
        with pytest.raises(JourneyDefinitionError, match=r"broken\.yaml is not valid YAML"):
            load_journey_yaml("id: [unclosed", origin="broken.yaml")

    def test_errors_name_the_file_and_the_place(self) -> None:
        with pytest.raises(JourneyDefinitionError) as caught:
            load_journey_yaml("id: x\nname: X\nversion: 0\nnodes: {}\n", origin="x.yaml")
        message = str(caught.value)
        assert message.startswith("x.yaml is not a valid journey:")
        assert "version: Input should be greater than or equal to 1" in message
        assert "nodes: Dictionary should have at least 2 items" in message


class TestJsonSchema:
    def test_the_committed_schema_is_current(self) -> None:
        committed = (JOURNEYS_DIR / "schema.json").read_text(encoding="utf-8")
        assert committed == render_journey_json_schema(), (
            "journeys/schema.json is stale: run `python -m footprint.engine.schema journeys/schema.json`"
        )

    def test_schema_describes_every_node_type(self) -> None:
        schema = journey_json_schema()
        node_types = {
            definition["properties"]["type"]["const"]
            for definition in schema["$defs"].values()
            if "type" in definition.get("properties", {}) and "const" in definition["properties"]["type"]
        }
        assert node_types == {"trigger", "wait", "wait_for", "condition", "split", "send", "update", "exit"}
        assert schema["title"] == "Footprint journey"
        json.dumps(schema)  # serialisable

    def test_editors_can_check_templates_with_it(self) -> None:
        jsonschema = pytest.importorskip("jsonschema")  # a dev dependency (via cfn-lint)
        validator = jsonschema.Draft202012Validator(journey_json_schema())
        for path in sorted(JOURNEYS_DIR.glob("*.yaml")):
            data = read_journey_yaml(path.read_text(encoding="utf-8"))
            assert [error.message for error in validator.iter_errors(data)] == [], path.name
        broken = {"id": "x", "name": "X", "version": 1, "nodes": {"t": {"type": "teleport"}}}
        assert list(validator.iter_errors(broken))

    def test_templates_round_trip_through_json(self) -> None:
        for path in sorted(JOURNEYS_DIR.glob("*.yaml")):
            parsed = load_journey_yaml(path.read_text(encoding="utf-8"), origin=path.name)
            assert Journey.model_validate(parsed.model_dump(mode="json")) == parsed, path.name


class TestChannelOptions:
    """Every option an adapter supports can be written in the journey, and is checked at publish."""

    def test_web_push_options_and_webhook_headers_are_part_of_the_content(self) -> None:
        push = {
            "type": "send",
            "channel": "web_push",
            "content": {
                "title": "{{ trigger.name }} giảm 10%",
                "badge": "/badge.png",
                "actions": [{"action": "buy", "title": "Mua {{ trigger.name }}", "url": "/cart"}],
                "ttl": 3600,
                "urgency": "high",
                "topic": "summer-sale",
                "tag": "summer-sale",
                "require_interaction": True,
            },
        }
        hook = {
            "type": "send",
            "channel": "webhook",
            "content": {"url": "https://crm.example/h", "headers": {"X-Api-Key": "k"}, "secret": "crm-prod_1"},
        }

        built = flow(("push", push), ("hook", hook))

        push_node, hook_node = built.nodes["push"], built.nodes["hook"]
        assert isinstance(push_node, SendNode)
        assert isinstance(hook_node, SendNode)
        assert push_node.content is not None
        assert push_node.content.urgency == "high"
        assert push_node.content.actions[0].title == "Mua {{ trigger.name }}"
        assert hook_node.content is not None
        assert hook_node.content.headers == {"X-Api-Key": "k"}
        assert hook_node.content.secret == "crm-prod_1"  # signed with footprint/webhooks/crm-prod_1

    @pytest.mark.parametrize(
        ("content", "complaint"),
        [
            ({"title": "t", "urgency": "asap"}, "urgency"),
            ({"title": "t", "topic": "no spaces allowed"}, "topic"),
            ({"title": "t", "ttl": -1}, "ttl"),
            ({"title": "t", "actions": [{"action": "a", "title": "1"}] * 3}, "actions"),
            ({"url": "https://x.example", "headers": {"webhook-signature": "v1,x"}}, "set by Footprint"),
            ({"url": "https://x.example", "headers": {"Bad Header": "x"}}, "headers"),
            # a secret's name is one path segment under footprint/webhooks/, never a path or a template
            ({"url": "https://x.example", "secret": "../prod/db"}, "secret"),
            ({"url": "https://x.example", "secret": "{{ profile.crm }}"}, "secret"),
            ({"url": "https://x.example", "secret": ""}, "secret"),
            ({"url": "https://x.example", "secret": "k" * 65}, "secret"),
            ({"title": "t", "secret": "crm"}, "content.secret signs a webhook"),
        ],
    )
    def test_a_bad_option_is_refused_with_its_field(self, content: dict[str, Any], complaint: str) -> None:
        channel = "webhook" if "url" in content and "title" not in content else "web_push"
        message = problems_of(
            {**TRIGGER_TO_SEND, "send": {"type": "send", "channel": channel, "content": content, "next": "done"}}
        )

        assert complaint in message


TRIGGER_TO_SEND = {"start": {**TRIGGER, "next": "send"}, "done": {"type": "exit"}}
