"""moto (in-process) fixtures: the stack's tables, with the template's key schemas, per test.

Environment basics (region, fake credentials, AWS_ACCOUNT_ID_ENDPOINT_MODE) are set for the whole
suite in tests/conftest.py. Every test gets fresh tables and fresh cached clients and settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from moto import mock_aws

from footprint.adapters import wiring

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class Tables:
    """The physical names of the stack's tables, and a client to look inside them."""

    events: str
    profiles: str
    config: str
    messages: str
    idempotency: str
    steps: str
    client: DynamoDBClient


def _key_schema(hash_key: str, range_key: str | None = None) -> dict[str, Any]:
    keys = [(hash_key, "HASH")] + ([(range_key, "RANGE")] if range_key else [])
    return {
        "KeySchema": [{"AttributeName": name, "KeyType": kind} for name, kind in keys],
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"} for name, _ in keys],
    }


# One loader for the whole run: it caches the parsed service models, which every new session
# (moto starts each test without a default session) would otherwise parse again.
_SHARED_LOADER = botocore.loaders.create_loader()


@pytest.fixture
def moto_aws() -> Iterator[None]:
    """In-process moto; boto3's default session (the one the functions' clients use) is fresh per test."""
    with mock_aws():
        botocore_session = botocore.session.get_session()
        botocore_session.register_component("data_loader", _SHARED_LOADER)
        boto3.setup_default_session(botocore_session=botocore_session)
        yield


@pytest.fixture
def tables(moto_aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tables]:
    """The six tables, named in the environment the way the template names them for the functions."""
    client = boto3.client("dynamodb")
    names = {
        "events": "footprint-events",
        "profiles": "footprint-profiles",
        "config": "footprint-config",
        "messages": "footprint-messages",
        "idempotency": "footprint-idempotency",
        "steps": "footprint-steps",
    }
    schemas = {
        "events": _key_schema("pk", "sk"),
        "profiles": _key_schema("pk", "sk"),
        "config": _key_schema("id"),
        "messages": _key_schema("pk", "sk"),
        "idempotency": _key_schema("id"),
        "steps": _key_schema("pk", "sk"),
    }
    for role, name in names.items():
        extra: dict[str, Any] = {}
        if role == "events":
            extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
        client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **schemas[role], **extra)
        ttl_attribute = "expiration" if role == "idempotency" else "expires_at"
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute}
        )
        monkeypatch.setenv(f"{role.upper()}_TABLE", name)
    wiring.reset()
    yield Tables(**names, client=client)
    wiring.reset()
