"""Write keys in ConfigTable for the sources admin (footprint.services.sources).

Each key is the item ``id = "source/{write_key}"`` with ``value`` the Source as JSON, the layout the
tracking API reads (footprint.adapters.sources); listing scans the ``source/`` items, which are few
(ConfigTable holds journeys and sources only, and admin calls are rare).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from footprint.models import keys
from footprint.models.segment import Source

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_PREFIX = keys.source_parameter("")


class DynamoSourceKeyStore:
    def __init__(self, client: DynamoDBClient, config_table: str) -> None:
        self.client = client
        self.table = config_table

    def create(self, write_key: str, source: Source) -> None:
        try:
            self._put(write_key, source, "attribute_not_exists(id)")
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise KeyError(write_key) from error
            raise

    def replace(self, write_key: str, source: Source) -> None:
        self._put(write_key, source, "attribute_exists(id)")

    def all(self) -> list[tuple[str, Source]]:
        found: list[tuple[str, Source]] = []
        scan: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "begins_with(id, :prefix)",
            "ExpressionAttributeValues": {":prefix": {"S": _PREFIX}},
            "ConsistentRead": True,
        }
        while True:
            page = self.client.scan(**scan)
            for item in page.get("Items", []):
                value = item.get("value", {}).get("S")
                try:
                    source = Source.model_validate(json.loads(value)) if value else None
                except (ValueError, ValidationError):
                    source = None  # an operator's hand-made item that does not read: not listed, not touched
                if source is not None:
                    found.append((item["id"]["S"].removeprefix(_PREFIX), source))
            if "LastEvaluatedKey" not in page:
                return found
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _put(self, write_key: str, source: Source, condition: str) -> None:
        value = source.model_dump(mode="json", exclude_defaults=True)
        value["source_id"] = source.source_id
        self.client.put_item(
            TableName=self.table,
            Item={"id": {"S": keys.source_parameter(write_key)}, "value": {"S": json.dumps(value)}},
            ConditionExpression=condition,
        )
