"""Signed identity: the user_hash scheme, and who vouches for each call track stores."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from pydantic import ValidationError

from footprint.identity import sign_user_id, verify_user_hash
from footprint.models.events import TrackedEvent
from footprint.models.segment import Source
from footprint.services.ingest import IngestService
from footprint.services.tracking import InvalidPayloadError, TrackingRequest
from tests.builders import T0
from tests.ingest_fakes import InMemoryEventStore, InMemorySourceDirectory


def test_a_user_hash_is_the_hmac_sha256_of_the_user_id_in_hex() -> None:
    expected = hmac.new(b"s3cret", b"user-42", hashlib.sha256).hexdigest()
    assert sign_user_id("s3cret", "user-42") == expected


def test_only_the_signature_of_that_user_id_with_that_secret_verifies() -> None:
    good = sign_user_id("s3cret", "user-42")
    assert verify_user_hash("s3cret", "user-42", good)
    assert verify_user_hash("s3cret", "user-42", good.upper())
    assert not verify_user_hash("s3cret", "user-43", good)
    assert not verify_user_hash("other", "user-42", good)
    assert not verify_user_hash(None, "user-42", good)
    assert not verify_user_hash("s3cret", "user-42", None)
    assert not verify_user_hash("s3cret", "user-42", "")


def test_the_identity_secret_never_shows_in_a_source_repr() -> None:
    source = Source(source_id="shop", identity_secret="s3cret")
    assert "s3cret" not in repr(source)


# ---------------------------------------------------------------- who vouches for a stored call

SECRET = "s3cret"
SHOP = Source(source_id="shop", allowed_origins=("https://shop.example.com",), identity_secret=SECRET)
BACKEND = Source(source_id="shop", trusted=True)


def ingest(source: Source, message: dict[str, Any]) -> TrackedEvent:
    store = InMemoryEventStore()
    service = IngestService(InMemorySourceDirectory({"wk": source}), store, now=lambda: T0)
    service.ingest(TrackingRequest(call=None, body=json.dumps({"writeKey": "wk", "batch": [message]})))
    (event,) = store.events
    return event


def identify(**fields: Any) -> dict[str, Any]:
    return {"type": "identify", "anonymousId": "a1", "userId": "user-42", **fields}


@pytest.mark.parametrize(
    "message",
    [
        identify(context={"user_hash": sign_user_id(SECRET, "user-42")}),
        identify(user_hash=sign_user_id(SECRET, "user-42")),
        # context.user_hash wins over a top-level one
        identify(user_hash="bad", context={"user_hash": sign_user_id(SECRET, "user-42"), "ip": "1.2.3.4"}),
    ],
)
def test_a_valid_user_hash_makes_a_signed_call_and_is_not_stored(message: dict[str, Any]) -> None:
    event = ingest(SHOP, message)
    assert event.trust == "signed"
    assert event.identity_verified
    assert "user_hash" not in event.context
    assert "user_hash" not in event.model_dump_json()


@pytest.mark.parametrize(
    "message",
    [
        identify(),
        identify(context={"user_hash": "0" * 64}),
        identify(context={"user_hash": sign_user_id(SECRET, "user-43")}),
        identify(context={"user_hash": sign_user_id("other-secret", "user-42")}),
        identify(context={"user_hash": 42}),
        {"type": "track", "event": "x", "anonymousId": "a1", "context": {"user_hash": sign_user_id(SECRET, "")}},
    ],
)
def test_anything_else_from_a_browser_source_is_a_browser_call(message: dict[str, Any]) -> None:
    event = ingest(SHOP, message)
    assert event.trust == "browser"
    assert not event.identity_verified


def test_a_source_without_an_identity_secret_signs_nothing() -> None:
    no_secret = SHOP.model_copy(update={"identity_secret": None})
    assert ingest(no_secret, identify(user_hash=sign_user_id(SECRET, "user-42"))).trust == "browser"


def test_every_call_of_a_trusted_source_is_a_server_call() -> None:
    assert ingest(BACKEND, identify()).trust == "server"


def test_a_trusted_source_accepts_no_browser_origin() -> None:
    with pytest.raises(ValidationError, match="servers only"):
        Source(source_id="shop", trusted=True, allowed_origins=("https://shop.example.com",))


def test_a_stored_event_cannot_claim_trust_from_its_payload() -> None:
    with pytest.raises(InvalidPayloadError):
        ingest(SHOP, identify(trust="server"))
    assert ingest(SHOP, identify(context={"trust": "server"})).trust == "browser"
