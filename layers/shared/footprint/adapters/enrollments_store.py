"""Enrollments in ProfilesTable, next to their profile: pk profile#<id>, sk enrollment#<slot> (the journey
id; for a journey that runs per occurrence, the journey id and a digest of the occurrence)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import TypeAdapter

from footprint.engine import Effect, Enrollment
from footprint.engine.occurrences import slot_of
from footprint.models import keys
from footprint.services.journeys import EnrollmentConflictError, StoredEnrollment

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_effects = TypeAdapter(list[Effect])


class DynamoEnrollmentStore:
    def __init__(self, client: DynamoDBClient, profiles_table: str) -> None:
        self.client = client
        self.table = profiles_table

    def load_for_profile(self, profile_id: str) -> dict[str, StoredEnrollment]:
        pk = keys.profile_key(profile_id)["pk"]
        found: dict[str, StoredEnrollment] = {}
        query: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": keys.ENROLLMENT_PREFIX}},
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**query)
            for item in page.get("Items", []):
                stored = stored_from_item(item)
                found[slot_of(stored.enrollment)] = stored
            if "LastEvaluatedKey" not in page:
                return found
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def save(self, enrollment: Enrollment, effects: Sequence[Effect], read_revision: int | None) -> None:
        item: dict[str, Any] = {
            **{k: {"S": v} for k, v in keys.enrollment_key(enrollment.profile_id, slot_of(enrollment)).items()},
            "enrollment_id": {"S": enrollment.id},
            "journey_id": {"S": enrollment.journey_id},
            "status": {"S": enrollment.status},
            "revision": {"N": str(enrollment.revision)},
            "data": {"S": enrollment.model_dump_json()},
            "unsettled_effects": {"S": _effects.dump_json(list(effects)).decode()},
        }
        if enrollment.current_node:  # readable in the console and on the local page
            item["current_node"] = {"S": enrollment.current_node}
        condition: dict[str, Any]
        if read_revision is None:
            condition = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "revision = :rev",
                "ExpressionAttributeValues": {":rev": {"N": str(read_revision)}},
            }
        try:
            self.client.put_item(TableName=self.table, Item=item, **condition)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise EnrollmentConflictError(enrollment.id) from error
            raise

    def settle(self, enrollment: Enrollment) -> None:
        key = keys.enrollment_key(enrollment.profile_id, slot_of(enrollment))
        try:
            self.client.update_item(
                TableName=self.table,
                Key={k: {"S": v} for k, v in key.items()},
                UpdateExpression="REMOVE unsettled_effects",
                ConditionExpression="revision = :rev",
                ExpressionAttributeValues={":rev": {"N": str(enrollment.revision)}},
            )
        except ClientError as error:
            # A newer revision already replaced the effects: nothing left to settle here.
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise


def stored_from_item(item: dict[str, Any]) -> StoredEnrollment:
    enrollment = Enrollment.model_validate_json(item["data"]["S"])
    raw = item.get("unsettled_effects", {}).get("S")
    return StoredEnrollment(enrollment=enrollment, unsettled_effects=_effects.validate_json(raw) if raw else [])
