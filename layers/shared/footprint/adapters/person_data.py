"""Everything Footprint holds about one person, found by key (never a table scan), for
footprint.services.data_rights: export it, or delete it.

Where a person's data lives (footprint.models.keys):
- ProfilesTable: the profile of each of their identities (the contact and the anonymous visitors
  merged into it), and under each profile's key its enrollments and look-back events; an alias per
  anonymous id and user id; an applied marker per event (expires after a day);
- EventsTable: their events, under each anonymous id and user id they were stored by;
- StepsTable: their journey steps, in the partitions of the journeys their enrollments name (each
  journey's shards are queried with a filter on the profile: a deletion reads the journey's steps);
- MessagesTable: the messages of those steps (by idempotency key), and the frequency-cap counters
  under each profile and channel;
- EventBridge Scheduler: their enrollments' pending wake-ups.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, get_args

from botocore.exceptions import ClientError

from footprint.adapters.profiles_store import profile_from_item, profile_to_item
from footprint.engine.ids import wake_up_id
from footprint.engine.state import Enrollment
from footprint.models import keys
from footprint.models.channels import MessageChannel
from footprint.models.profile import Profile, new_profile

if TYPE_CHECKING:
    from footprint.services.data_rights import DeletionRecord

MAX_MERGED = 50
BATCH_WRITE_LIMIT = 25
CHANNELS: tuple[str, ...] = get_args(MessageChannel)


@dataclass
class PersonData:
    """What one person's request found, item by item (low-level DynamoDB attribute values)."""

    profiles: list[Profile] = field(default_factory=list)
    profile_items: list[dict[str, Any]] = field(default_factory=list)  # enrollments, look-back events
    aliases: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    pressure: list[dict[str, Any]] = field(default_factory=list)
    enrollments: list[Enrollment] = field(default_factory=list)

    @property
    def profile_ids(self) -> list[str]:
        return [profile.profile_id for profile in self.profiles]


class DynamoPersonData:
    def __init__(
        self,
        client: Any,
        *,
        profiles_table: str,
        events_table: str,
        steps_table: str,
        messages_table: str,
        scheduler: Any = None,
        schedule_group: str = "",
    ) -> None:
        self.client = client
        self.profiles_table = profiles_table
        self.events_table = events_table
        self.steps_table = steps_table
        self.messages_table = messages_table
        self.scheduler = scheduler
        self.schedule_group = schedule_group

    # ------------------------------------------------------------------------------------- find

    def profile_id_for_alias(self, source_id: str, kind: str, value: str) -> str | None:
        key = keys.alias_key(source_id, kind, value)  # type: ignore[arg-type]
        item = self._get(self.profiles_table, key)
        return item["profile_id"]["S"] if item else None

    def get_profile(self, profile_id: str) -> Profile | None:
        item = self._get(self.profiles_table, keys.profile_key(profile_id))
        return profile_from_item(item) if item else None

    def collect(self, profile_id: str) -> PersonData:
        """The live profile (following merges), every profile merged into it, and all their data."""
        found = PersonData()
        profile = self.get_profile(profile_id)
        for _ in range(5):
            if profile is None or not profile.merged_into:
                break
            profile = self.get_profile(profile.merged_into)
        if profile is None:
            return found
        queue, seen = [profile], {profile.profile_id}
        while queue and len(found.profiles) < MAX_MERGED:
            current = queue.pop()
            found.profiles.append(current)
            for merged_id in current.merged_profile_ids:
                merged = self.get_profile(merged_id) if merged_id not in seen else None
                if merged is not None:
                    seen.add(merged_id)
                    queue.append(merged)
        for each in found.profiles:
            for item in self._query(self.profiles_table, keys.profile_key(each.profile_id)["pk"]):
                if item["sk"]["S"] == keys.PROFILE_SK:
                    continue
                found.profile_items.append(item)
                if item["sk"]["S"].startswith(keys.ENROLLMENT_PREFIX):
                    found.enrollments.append(Enrollment.model_validate_json(item["data"]["S"]))
            for kind, value in _identities(each):
                alias = self._get(self.profiles_table, keys.alias_key(each.source_id, kind, value))  # type: ignore[arg-type]
                if alias is not None and alias["profile_id"]["S"] in seen:
                    found.aliases.append(alias)
            for visitor_id in dict.fromkeys(value for _, value in _identities(each)):
                found.events += self._query(self.events_table, f"visitor#{each.source_id}#{visitor_id}")
            for channel in CHANNELS:
                found.pressure += self._query(self.messages_table, f"pressure#{each.profile_id}#{channel}")
        found.steps = self._steps(found)
        message_keys = dict.fromkeys(step["idempotency_key"]["S"] for step in found.steps if "idempotency_key" in step)
        messages = (self._get(self.messages_table, keys.message_key(key)) for key in message_keys)
        found.messages = [message for message in messages if message is not None]
        return found

    def _steps(self, found: PersonData) -> list[dict[str, Any]]:
        journey_ids = dict.fromkeys(enrollment.journey_id for enrollment in found.enrollments)
        ids = found.profile_ids
        values = {f":p{index}": {"S": pid} for index, pid in enumerate(ids)}
        steps: list[dict[str, Any]] = []
        for journey_id in journey_ids:
            for shard in range(keys.STEP_SHARDS):
                steps += self._query(
                    self.steps_table,
                    keys.step_partition(journey_id, shard),
                    FilterExpression=f"profile_id IN ({', '.join(values)})",
                    extra_values=values,
                )
        return steps

    # ------------------------------------------------------------------------------------ delete

    def _cancel_wake_ups(self, enrollment: Enrollment) -> None:
        """Every schedule the enrollment ever asked for (``<id>-t1`` ... ``-t<wake_up_seq>``), not only
        the pending one: a wake-up superseded, or left by a copy merged into the contact, would still
        fire for the tombstone (harmless, but it is the person's data)."""
        if self.scheduler is None or not self.schedule_group:
            return
        for seq in range(1, enrollment.wake_up_seq + 1):
            try:
                self.scheduler.delete_schedule(Name=wake_up_id(enrollment.id, f"t{seq}"), GroupName=self.schedule_group)
            except ClientError as error:  # an SQS timer, or one that already fired
                if error.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise

    def delete(self, found: PersonData, *, deleted_at: datetime, tombstone_expires_at: datetime) -> dict[str, int]:
        """Delete everything ``found`` holds; leave a tombstone per profile and alias, expiring at
        ``tombstone_expires_at``, so events already in flight are dropped. Returns counts per kind.
        Safe to run again: every write is a delete or an overwrite of the same key."""
        expires = {"N": str(int(tombstone_expires_at.timestamp()))}
        for enrollment in found.enrollments:
            self._cancel_wake_ups(enrollment)
        markers = [keys.applied_marker_key(*parts) for item in found.events if (parts := _marker_parts(item))]
        self._delete(self.events_table, [_key(item) for item in found.events])
        self._delete(self.profiles_table, [{"pk": {"S": m["pk"]}, "sk": {"S": m["sk"]}} for m in markers])
        self._delete(self.profiles_table, [_key(item) for item in found.profile_items])
        self._delete(self.steps_table, [_key(item) for item in found.steps])
        self._delete(self.messages_table, [_key(item) for item in found.messages + found.pressure])
        for profile in found.profiles:
            tombstone = new_profile(profile.profile_id, profile.source_id).model_copy(
                update={"deleted_at": deleted_at, "revision": profile.revision + 1}
            )
            self.client.put_item(
                TableName=self.profiles_table, Item={**profile_to_item(tombstone), "expires_at": expires}
            )
        for alias in found.aliases:
            self.client.put_item(TableName=self.profiles_table, Item={**alias, "expires_at": expires})
        return {
            "profiles": len(found.profiles),
            "aliases": len(found.aliases),
            "events": len(found.events),
            "enrollments": len(found.enrollments),
            "profile_items": len(found.profile_items),
            "steps": len(found.steps),
            "messages": len(found.messages),
            "frequency_counters": len(found.pressure),
        }

    # ----------------------------------------------------------------------------------- helpers

    def _get(self, table: str, key: dict[str, str]) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.client.get_item(
            TableName=table, Key={k: {"S": v} for k, v in key.items()}, ConsistentRead=True
        ).get("Item")
        return item

    def _query(
        self, table: str, pk: str, *, extra_values: dict[str, Any] | None = None, **options: Any
    ) -> list[dict[str, Any]]:
        request: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}, **(extra_values or {})},
            "ConsistentRead": True,
            **options,
        }
        return list(_pages(self.client, request))

    def _delete(self, table: str, item_keys: list[dict[str, Any]]) -> None:
        unique = list({json.dumps(key, sort_keys=True): key for key in item_keys}.values())
        for start in range(0, len(unique), BATCH_WRITE_LIMIT):
            requests: dict[str, Any] = {
                table: [{"DeleteRequest": {"Key": key}} for key in unique[start : start + BATCH_WRITE_LIMIT]]
            }
            for _ in range(8):  # unprocessed items under throttling; bounded, then raise
                if not requests:
                    break
                requests = self.client.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
            if requests:
                raise RuntimeError(f"{table}: some deletions stayed unprocessed; run the request again")


def _pages(client: Any, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    while True:
        page = client.query(**request)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        request = {**request, "ExclusiveStartKey": page["LastEvaluatedKey"]}


def _identities(profile: Profile) -> Iterable[tuple[str, str]]:
    for anonymous_id in profile.anonymous_ids:
        yield "anon", anonymous_id
    if profile.user_id:
        yield "user", profile.user_id


def _key(item: dict[str, Any]) -> dict[str, Any]:
    return {"pk": item["pk"], "sk": item["sk"]}


def _marker_parts(item: dict[str, Any]) -> tuple[str, str, str] | None:
    """(source, visitor id, message id) of a stored event, for its applied marker."""
    pk, sk = item["pk"]["S"], item["sk"]["S"]
    _, _, rest = pk.partition("#")
    source_id, _, visitor_id = rest.partition("#")
    if not (source_id and visitor_id and sk.startswith("event#")):
        return None
    return source_id, visitor_id, sk.removeprefix("event#")


class DynamoDeletionLog:
    """The record of each deletion: ConfigTable ``deletion/<id>`` (kept; it names no one)."""

    def __init__(self, client: Any, config_table: str) -> None:
        self.client = client
        self.config_table = config_table

    def record(self, record: DeletionRecord) -> None:
        self.client.put_item(
            TableName=self.config_table,
            Item={"id": {"S": f"deletion/{record.deletion_id}"}, "value": {"S": record.model_dump_json()}},
        )
