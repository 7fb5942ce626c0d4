"""Published journeys in ConfigTable, read through Powertools Parameters (cached in a warm Lambda).

Items (the DynamoDBProvider layout, ``id`` + ``value``):
- ``journey/<id>/v<version>``: the journey YAML as published. Versions are immutable.
- ``journeys/active``: JSON ``{"<id>": <version>, ...}``, the version new visitors enter.
Pausing removes a journey from the index: nobody new enters; visitors in flight finish on the
version they entered.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.parameters import DynamoDBProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError

from footprint.models.journey import Journey, load_journey_yaml
from footprint.services.admin_api import JourneyVersionExistsError, UnknownJourneyError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.service_resource import DynamoDBServiceResource

ACTIVE_INDEX = "journeys/active"


def version_parameter(journey_id: str, version: int) -> str:
    return f"journey/{journey_id}/v{version}"


class DynamoJourneyCatalog:
    def __init__(
        self,
        client: DynamoDBClient,
        config_table: str,
        cache_seconds: int,
        resource: DynamoDBServiceResource | None = None,
    ) -> None:
        self.client = client
        self.table = config_table
        self.cache_seconds = cache_seconds
        # Without a resource Powertools creates a boto3 Session of its own, which loads botocore's data again.
        self.provider = DynamoDBProvider(table_name=config_table, boto3_client=resource)
        self._versions: dict[tuple[str, int], Journey | None] = {}

    # Reads (evaluate) -----------------------------------------------------------------------

    def active_index(self, fresh: bool = False) -> dict[str, int]:
        try:
            raw = self.provider.get(ACTIVE_INDEX, max_age=0 if fresh else self.cache_seconds, force_fetch=fresh)
        except GetParameterError:
            return {}
        return {str(k): int(v) for k, v in json.loads(str(raw)).items()}

    def active(self) -> list[Journey]:
        journeys = (self.version(journey_id, version) for journey_id, version in sorted(self.active_index().items()))
        return [journey for journey in journeys if journey is not None]

    def version(self, journey_id: str, version: int) -> Journey | None:
        """A published version; immutable, so cached for the life of the process once read."""
        key = (journey_id, version)
        if key not in self._versions:
            try:
                text = self.provider.get(version_parameter(journey_id, version), max_age=self.cache_seconds)
            except GetParameterError:
                return None
            self._versions[key] = load_journey_yaml(str(text), origin=version_parameter(journey_id, version))
        return self._versions[key]

    # Admin (CLI, admin routes) ---------------------------------------------------------------

    def publish(self, journey: Journey, yaml_text: str) -> None:
        """Store a new version; if its status is active, new visitors enter it from now on."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item={"id": {"S": version_parameter(journey.id, journey.version)}, "value": {"S": yaml_text}},
                ConditionExpression="attribute_not_exists(id)",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            stored = self.version(journey.id, journey.version)
            if stored is None or stored != journey:
                raise JourneyVersionExistsError(f"{journey.id} v{journey.version} is already published") from error
        if journey.status == "active":
            self._set_active(journey.id, journey.version)
        elif journey.status == "paused":
            self._set_active(journey.id, None)

    def pause(self, journey_id: str) -> None:
        if journey_id not in self.active_index(fresh=True):
            raise UnknownJourneyError(f"{journey_id} is not active")
        self._set_active(journey_id, None)

    def resume(self, journey_id: str, version: int | None = None) -> int:
        chosen = version or self.latest_version(journey_id)
        if chosen is None or self.version(journey_id, chosen) is None:
            raise UnknownJourneyError(f"{journey_id} has no published version {version or ''}".strip())
        self._set_active(journey_id, chosen)
        return chosen

    def published(self) -> dict[str, list[int]]:
        """Every journey id with its published versions."""
        versions: dict[str, list[int]] = {}
        scan: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "begins_with(id, :prefix)",
            "ExpressionAttributeValues": {":prefix": {"S": "journey/"}},
            "ProjectionExpression": "id",
        }
        while True:
            page = self.client.scan(**scan)
            for item in page.get("Items", []):
                _, journey_id, version = item["id"]["S"].split("/")
                versions.setdefault(journey_id, []).append(int(version.removeprefix("v")))
            if "LastEvaluatedKey" not in page:
                return {k: sorted(v) for k, v in sorted(versions.items())}
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def latest_version(self, journey_id: str) -> int | None:
        versions = self.published().get(journey_id)
        return versions[-1] if versions else None

    def _set_active(self, journey_id: str, version: int | None) -> None:
        # Read-modify-write guarded by the previous value, so two publishers cannot lose an update.
        for _ in range(5):
            item = self.client.get_item(TableName=self.table, Key={"id": {"S": ACTIVE_INDEX}}, ConsistentRead=True)
            old_raw = item.get("Item", {}).get("value", {}).get("S")
            index = json.loads(old_raw) if old_raw else {}
            if version is None:
                index.pop(journey_id, None)
            else:
                index[journey_id] = version
            condition: dict[str, Any] = (
                {"ConditionExpression": "#v = :old", "ExpressionAttributeValues": {":old": {"S": old_raw}}}
                if old_raw
                else {"ConditionExpression": "attribute_not_exists(id)"}
            )
            if old_raw:
                condition["ExpressionAttributeNames"] = {"#v": "value"}
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item={"id": {"S": ACTIVE_INDEX}, "value": {"S": json.dumps(index, sort_keys=True)}},
                    **condition,
                )
            except ClientError as error:
                if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    continue
                raise
            self.provider.clear_cache()
            return
        raise RuntimeError("the active journey index kept changing; try again")
