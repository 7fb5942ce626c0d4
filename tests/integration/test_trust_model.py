"""The trust model for the public write key, through the real path on moto: HTTP API events into
track_handler, EventsTable's stream, evaluate_handler, ProfilesTable.

Lan is a known contact (her shop's backend identified her). Mallory has the shop's public write
key, which is in every page, and knows Lan's userId. She must not be able to change Lan's
addresses or consent, nor merge her own browser into Lan (whose onsite messages it would then
receive), while Lan's own browser, with the user_hash the shop's backend put in her page, can.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

import evaluate_handler
import track_handler
from footprint.adapters import wiring
from footprint.adapters.profiles_store import DynamoProfileStore
from footprint.clock import ManualClock, current_clock, use_clock
from footprint.identity import sign_user_id
from footprint.models import keys
from footprint.models.consent import OPT_OUT
from footprint.models.profile import CONSENT_CONFIRMED, Profile, profile_id_for
from tests.api_gateway import http_api_event, http_result
from tests.builders import T0
from tests.integration.conftest import Tables
from tests.lambda_context import lambda_context

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

SECRET = "shop-identity-secret"
SHOP_ORIGIN = "https://shop.example.com"
SOURCES = {
    # The key in the shop's pages; its backend signs userIds with the identity secret.
    "wk-shop": {"source_id": "shop", "allowed_origins": [SHOP_ORIGIN], "identity_secret": SECRET},
    # The shop backend's own key (never in a page), for the same profiles.
    "wk-backend": {"source_id": "shop", "trusted": True},
}
LAN_EMAIL = "lan@example.com"
LAN_PHONE = "+84901234567"


@dataclass
class Stack:
    tables: Tables
    delivered: set[str] = field(default_factory=set)

    def send(self, write_key: str, *messages: dict[str, Any], origin: str | None = None) -> None:
        """One /v1/batch request, as a browser (writeKey in a text/plain body) or a server sends it."""
        if origin:
            body = json.dumps({"writeKey": write_key, "batch": list(messages)})
            event = http_api_event("/v1/batch", body, content_type="text/plain", headers={"origin": origin})
        else:
            event = http_api_event("/v1/batch", {"batch": list(messages)}, write_key=write_key)
        result = http_result(track_handler.handler(event, lambda_context("TrackFunction")))
        assert result.status == 200, result.body

    def evaluate(self) -> None:
        """Hand evaluate every stream record it has not seen yet, as Lambda's event source does."""
        new = [r for r in self._stream_records() if r["dynamodb"]["SequenceNumber"] not in self.delivered]
        self.delivered |= {r["dynamodb"]["SequenceNumber"] for r in new}
        response = evaluate_handler.handler({"Records": new}, lambda_context("EvaluateFunction"))
        assert response == {"batchItemFailures": []}

    def _stream_records(self) -> list[dict[str, Any]]:
        streams = boto3.client("dynamodbstreams")
        arn = self.tables.client.describe_table(TableName=self.tables.events)["Table"]["LatestStreamArn"]
        records: list[dict[str, Any]] = []
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            iterator = streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            records.extend(streams.get_records(ShardIterator=iterator)["Records"])  # type: ignore[arg-type]
        return records

    def profile(self, profile_id: str) -> Profile:
        found = DynamoProfileStore(self.tables.client, self.tables.profiles).get_profile(profile_id)
        assert found is not None, profile_id
        return found

    def alias(self, kind: str, value: str) -> str | None:
        key = keys.alias_key("shop", kind, value)  # type: ignore[arg-type]
        item = self.tables.client.get_item(
            TableName=self.tables.profiles, Key={name: {"S": v} for name, v in key.items()}
        ).get("Item")
        return item["profile_id"]["S"] if item else None


@pytest.fixture
def stack(tables: Tables) -> Iterator[Stack]:
    for write_key, source in SOURCES.items():
        tables.client.put_item(
            TableName=tables.config, Item={"id": {"S": f"source/{write_key}"}, "value": {"S": json.dumps(source)}}
        )
    wiring.reset()
    track_handler.ingest_service.cache_clear()
    previous_clock = current_clock()
    use_clock(ManualClock(T0))
    running = Stack(tables)
    # Lan logs in on her phone; the shop's backend tells Footprint who she is.
    running.send(
        "wk-backend",
        {
            "type": "identify",
            "messageId": "lan-signup",
            "userId": "u-lan",
            "anonymousId": "lan-phone",
            "traits": {"email": LAN_EMAIL, "phone": LAN_PHONE, "name": "Lan", "consent": {"email": True}},
        },
    )
    running.evaluate()
    yield running
    use_clock(previous_clock)
    track_handler.ingest_service.cache_clear()


def lan(stack: Stack) -> Profile:
    profile_id = stack.alias("user", "u-lan")
    assert profile_id is not None
    return stack.profile(profile_id)


def test_the_backend_makes_lan_a_reachable_known_contact(stack: Stack) -> None:
    contact = lan(stack)
    assert (contact.user_id, contact.email, contact.phone) == ("u-lan", LAN_EMAIL, LAN_PHONE)
    assert contact.consent == {"email": "granted"}
    assert contact.reachable_on("email", OPT_OUT)
    assert contact.reachable_on("sms", OPT_OUT)


def test_the_write_key_and_a_user_id_change_nothing_of_the_contact(stack: Stack) -> None:
    before = lan(stack)
    mallory = [
        {"type": "page", "messageId": "m1", "anonymousId": "mallory"},
        {
            "type": "identify",
            "messageId": "m2",
            "anonymousId": "mallory",
            "userId": "u-lan",
            "traits": {"email": "mallory@evil.test", "phone": "+84999999999", "consent": {"email": True, "sms": True}},
        },
        {"type": "track", "messageId": "m3", "userId": "u-lan", "event": "unsubscribed",
         "properties": {"channel": "email"}},
        {"type": "track", "messageId": "m4", "userId": "u-lan", "anonymousId": "mallory", "event": "consent_updated",
         "properties": {"channel": "sms", "granted": False}},
        # A forged signature, and an alias claiming Lan's browser.
        {"type": "identify", "messageId": "m5", "anonymousId": "mallory", "userId": "u-lan",
         "context": {"user_hash": sign_user_id("guessed-secret", "u-lan")}},
        {"type": "alias", "messageId": "m6", "anonymousId": "mallory", "userId": "u-lan", "previousId": "lan-phone"},
        # Only a trusted source may confirm an address.
        {"type": "track", "messageId": "m7", "anonymousId": "mallory", "event": CONSENT_CONFIRMED,
         "properties": {"channel": "email", "address": "mallory@evil.test"}},
    ]  # fmt: skip
    stack.send("wk-shop", *mallory, origin=SHOP_ORIGIN)
    stack.evaluate()

    after = lan(stack)
    assert (after.email, after.phone, after.consent) == (LAN_EMAIL, LAN_PHONE, {"email": "granted"})
    assert after.reachable_on("email", OPT_OUT)
    assert after.reachable_on("sms", OPT_OUT)
    assert after.anonymous_ids == ["lan-phone"]
    assert after.event_count == before.event_count
    assert after.merged_profile_ids == []
    # Mallory's browser is a visitor of its own, where the claimed userId is kept as unverified,
    # and the addresses she typed are not reachable: nobody confirmed them.
    own = stack.alias("anon", "mallory")
    assert own == profile_id_for("shop", "anon", "mallory")
    assert own != after.profile_id
    visitor = stack.profile(own)
    assert visitor.user_id is None
    assert visitor.unverified_user_id == "u-lan"
    assert visitor.email == "mallory@evil.test"
    assert not visitor.reachable_on("email", OPT_OUT)
    assert not visitor.reachable_on("sms", OPT_OUT)
    assert stack.alias("anon", "lan-phone") == after.profile_id


def test_lans_browser_with_a_valid_user_hash_joins_her_profile(stack: Stack) -> None:
    # Browsing anonymously on her laptop, then logging in: the shop's page carries her user_hash.
    stack.send("wk-shop", {"type": "page", "messageId": "l1", "anonymousId": "lan-laptop"}, origin=SHOP_ORIGIN)
    stack.evaluate()
    laptop = profile_id_for("shop", "anon", "lan-laptop")
    assert stack.profile(laptop).merged_into is None
    stack.send(
        "wk-shop",
        {
            "type": "identify",
            "messageId": "l2",
            "anonymousId": "lan-laptop",
            "userId": "u-lan",
            "context": {"user_hash": sign_user_id(SECRET, "u-lan")},
            "traits": {"email": "lan@new.example"},
        },
        {
            "type": "track",
            "messageId": "l3",
            "anonymousId": "lan-laptop",
            "userId": "u-lan",
            "user_hash": sign_user_id(SECRET, "u-lan"),
            "event": "consent_updated",
            "properties": {"channel": "sms", "granted": False},
        },
        origin=SHOP_ORIGIN,
    )
    stack.evaluate()

    contact = lan(stack)
    assert stack.profile(laptop).merged_into == contact.profile_id
    assert stack.alias("anon", "lan-laptop") == contact.profile_id
    assert sorted(contact.anonymous_ids) == ["lan-laptop", "lan-phone"]
    # A signed call may change her address, which then waits for her confirmation, and her consent.
    assert contact.email == "lan@new.example"
    assert contact.consent == {"email": "pending", "sms": "denied"}
    assert not contact.reachable_on("email", OPT_OUT)
    # The confirmation link in the email she receives: the shop's backend (or Footprint's own
    # confirmation route) reports it from a trusted path.
    stack.send(
        "wk-backend",
        {
            "type": "track",
            "messageId": "l4",
            "userId": "u-lan",
            "event": CONSENT_CONFIRMED,
            "properties": {"channel": "email", "address": "lan@new.example"},
        },
    )
    stack.evaluate()
    assert lan(stack).reachable_on("email", OPT_OUT)


def test_the_signature_is_not_stored_with_the_event(stack: Stack) -> None:
    user_hash = sign_user_id(SECRET, "u-lan")
    stack.send(
        "wk-shop",
        {"type": "identify", "messageId": "s1", "anonymousId": "lan-phone", "userId": "u-lan", "user_hash": user_hash},
        origin=SHOP_ORIGIN,
    )
    items = stack.tables.client.scan(TableName=stack.tables.events)["Items"]
    stored = next(item for item in items if item["sk"]["S"].endswith("s1"))
    assert user_hash not in json.dumps(stored)
    assert json.loads(stored["body"]["S"])["trust"] == "signed"
