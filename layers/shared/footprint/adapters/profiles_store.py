"""ProfilesTable through boto3: profiles, identity aliases, and the exactly-once fold of events."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from footprint.models import keys
from footprint.models.profile import MAX_SUPPRESSED_ADDRESSES, Profile, apply_profile_update
from footprint.services.profiles import AlreadyAppliedError, ConcurrentUpdateError, ProfileCommit

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from footprint.engine import UpdateProfile

BATCH_GET_LIMIT = 100


# Stream records are retried for at most an hour (MaximumRecordAgeInSeconds); a day is ample.
APPLIED_MARKER_TTL = timedelta(days=1)


class DynamoProfileStore:
    def __init__(self, client: DynamoDBClient, profiles_table: str) -> None:
        self.client = client
        self.profiles_table = profiles_table

    def get_aliases(self, alias_pks: Iterable[str]) -> dict[str, str]:
        items = self._batch_get([{"pk": pk, "sk": keys.ALIAS_SK} for pk in dict.fromkeys(alias_pks)])
        return {item["pk"]["S"]: item["profile_id"]["S"] for item in items}

    def get_profiles(self, profile_ids: Iterable[str]) -> dict[str, Profile]:
        items = self._batch_get([keys.profile_key(pid) for pid in dict.fromkeys(profile_ids)])
        profiles = [profile_from_item(item) for item in items]
        return {p.profile_id: p for p in profiles}

    def get_profile(self, profile_id: str) -> Profile | None:
        return self.get_profiles([profile_id]).get(profile_id)

    def forget_web_push_subscriptions(self, profile_id: str, endpoints: Sequence[str]) -> None:
        """Drop subscriptions a push service answered 404/410 for (optimistic, retried)."""
        gone = set(endpoints)
        self._rewrite(
            profile_id,
            lambda p: p.model_copy(
                update={"web_push_subscriptions": [s for s in p.web_push_subscriptions if s.endpoint not in gone]}
            ),
        )

    def suppress_address(self, profile_id: str, key: str, reason: str) -> None:
        """An address the provider refused as invalid (footprint.models.profile.suppression_key)."""

        def suppress(profile: Profile) -> Profile:
            suppressed = {**profile.suppressed, key: reason[:200]}
            return profile.model_copy(update={"suppressed": dict(list(suppressed.items())[-MAX_SUPPRESSED_ADDRESSES:])})

        self._rewrite(profile_id, suppress)

    def update(self, change: UpdateProfile) -> None:
        """A journey's update node: set attributes, tags or lifecycle stage (optimistic, retried)."""
        self._rewrite(change.profile_id, lambda p: apply_profile_update(p, change))

    def _rewrite(self, profile_id: str, edit: Callable[[Profile], Profile]) -> None:
        for _ in range(5):
            profile = self.get_profile(profile_id)
            if profile is None:
                return
            updated = edit(profile).model_copy(update={"revision": profile.revision + 1})
            try:
                self.client.put_item(
                    TableName=self.profiles_table,
                    Item=profile_to_item(updated),
                    ConditionExpression="revision = :rev",
                    ExpressionAttributeValues={":rev": {"N": str(profile.revision)}},
                )
            except ClientError as error:
                if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    continue
                raise
            return
        raise ConcurrentUpdateError(profile_id)

    def commit(self, change: ProfileCommit) -> None:
        event = change.event
        marker = keys.applied_marker_key(event.source_id, event.visitor_id, event.message_id)
        expires_at = int((change.applied_at + APPLIED_MARKER_TTL).timestamp())
        actions: list[Any] = [
            {
                "Put": {
                    "TableName": self.profiles_table,
                    "Item": {
                        **{k: {"S": v} for k, v in marker.items()},
                        "applied_at": {"S": change.applied_at.isoformat()},
                        "expires_at": {"N": str(expires_at)},
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        for profile, read_revision in change.profiles:
            put: dict[str, Any] = {"TableName": self.profiles_table, "Item": profile_to_item(profile)}
            if read_revision == 0:
                put["ConditionExpression"] = "attribute_not_exists(pk)"
            else:
                put["ConditionExpression"] = "revision = :rev"
                put["ExpressionAttributeValues"] = {":rev": {"N": str(read_revision)}}
            actions.append({"Put": put})
        for alias_pk, profile_id in sorted(change.aliases.items()):
            item = {"pk": {"S": alias_pk}, "sk": {"S": keys.ALIAS_SK}, "profile_id": {"S": profile_id}}
            actions.append({"Put": {"TableName": self.profiles_table, "Item": item}})
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            codes = [r.get("Code", "None") for r in error.response.get("CancellationReasons") or []]
            if (codes and codes[0] == "ConditionalCheckFailed") or (not codes and self._marked(marker)):
                raise AlreadyAppliedError(marker["pk"]) from error
            raise ConcurrentUpdateError(str(codes)) from error

    def _marked(self, marker: dict[str, str]) -> bool:
        item = self.client.get_item(
            TableName=self.profiles_table, Key={k: {"S": v} for k, v in marker.items()}, ConsistentRead=True
        )
        return "Item" in item

    def _batch_get(self, key_list: list[dict[str, str]]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for start in range(0, len(key_list), BATCH_GET_LIMIT):
            request: Any = {
                self.profiles_table: {
                    "Keys": [
                        {k: {"S": v} for k, v in key.items()} for key in key_list[start : start + BATCH_GET_LIMIT]
                    ],
                    "ConsistentRead": True,
                }
            }
            for _ in range(8):  # unprocessed keys under throttling; bounded
                if not request:
                    break
                response = self.client.batch_get_item(RequestItems=request)
                found.extend(response.get("Responses", {}).get(self.profiles_table, []))
                request = response.get("UnprocessedKeys") or {}
        return found


def profile_to_item(profile: Profile) -> dict[str, Any]:
    """Key fields as attributes (for reading in the console), the whole profile as JSON."""
    item: dict[str, Any] = {
        **{k: {"S": v} for k, v in keys.profile_key(profile.profile_id).items()},
        "profile_id": {"S": profile.profile_id},
        "source_id": {"S": profile.source_id},
        "revision": {"N": str(profile.revision)},
        "data": {"S": profile.model_dump_json()},
    }
    if profile.merged_into:
        item["merged_into"] = {"S": profile.merged_into}
    if profile.user_id:
        item["user_id"] = {"S": profile.user_id}
    if profile.last_seen_at:
        item["last_seen_at"] = {"S": profile.last_seen_at.isoformat()}
    return item


def profile_from_item(item: dict[str, Any]) -> Profile:
    return Profile.model_validate_json(item["data"]["S"])
