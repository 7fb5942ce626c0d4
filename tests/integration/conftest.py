"""moto (in-process) fixtures: the stack's tables, with the template's key schemas, per test.

Environment basics (region, fake credentials, AWS_ACCOUNT_ID_ENDPOINT_MODE) are set for the whole
suite in tests/conftest.py. Every test gets fresh tables and fresh cached clients and settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import boto3
import botocore.loaders
import botocore.session
import pytest
from moto import mock_aws

from footprint.adapters import wiring
from footprint_local.template import TableSpec, load_template

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


@cache
def _table_specs() -> dict[str, TableSpec]:
    return {spec.logical_id: spec for spec in load_template().tables}


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
    # The template's own key schemas and indexes (the OnsiteInbox GSI), so tests and stack cannot drift.
    for role, name in names.items():
        client.create_table(**_table_specs()[f"{role.capitalize()}Table"].create_table_kwargs(name))
        ttl_attribute = "expiration" if role == "idempotency" else "expires_at"
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute}
        )
        monkeypatch.setenv(f"{role.upper()}_TABLE", name)
    wiring.reset()
    yield Tables(**names, client=client)
    wiring.reset()
