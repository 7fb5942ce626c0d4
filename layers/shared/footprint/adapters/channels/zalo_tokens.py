"""Zalo OA access tokens: refreshed before they expire, one refresh at a time, never a token burnt.

Zalo's OA access token lasts about 25 hours; it is renewed with OAuth v4 (``POST
https://oauth.zaloapp.com/v4/oa/access_token``, header ``secret_key``, form ``app_id``,
``grant_type=refresh_token``, ``refresh_token``), which answers a new access token **and a new
refresh token**: each refresh token works once. Two send containers refreshing with the same refresh
token would burn it (the second call fails, and if the first one's answer were lost, nobody could
send any more). So:

- the current pair lives in one ConfigTable item (``id = zalo_zns/oa_token``), read by every container;
- a container that finds the access token due takes a **lease** on the item first (a conditional
  update: no live lease, and the refresh token it read is still the current one); only the lease
  holder calls Zalo; the others see the lease and retry their message later (SQS), by which time
  the new pair is stored;
- the holder stores the new pair conditionally on its lease.

The first refresh token (and the app's id and secret key) come from a Secrets Manager secret
``{"app_id", "secret_key", "refresh_token"}``; after the first refresh the item is authoritative.
If a refresh's answer is lost (a timeout after Zalo issued the pair), the old refresh token is
spent: the next refresh fails and the channel reports it until someone puts a new refresh token
in the secret and deletes the item (written in the README's deploy steps).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from footprint.adapters.channels.http_json import DEFAULT_TIMEOUT_SECONDS, post_form
from footprint.clock import Clock
from footprint.services.retries import RetryableDeliveryError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ZALO_OAUTH_URL = "https://oauth.zaloapp.com/v4/oa/access_token"
TOKEN_ITEM_ID = "zalo_zns/oa_token"  # noqa: S105 - an item id, not a secret
# Refresh this long before Zalo's expiry, so a token never runs out between read and use.
REFRESH_MARGIN = timedelta(minutes=10)
# A lease outlives one OAuth call (its timeout) by far; a holder that died frees it after this.
LEASE_DURATION = timedelta(seconds=60)
CONDITION_FAILED = "ConditionalCheckFailedException"


class ZaloTokenError(RetryableDeliveryError):
    """No usable access token now (being refreshed elsewhere, or Zalo refused the refresh): retry later."""


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    access_expires_at: datetime


class TokenStore(Protocol):
    def load(self) -> TokenPair | None: ...

    def take_lease(self, read: TokenPair | None, lease_id: str, until: datetime, now: datetime) -> bool:
        """Lease the item for one refresh, if no live lease is held and ``read`` is still current."""
        ...

    def store(self, pair: TokenPair, lease_id: str) -> bool:
        """Write the new pair and end the lease, only while ``lease_id`` holds it."""
        ...


AppCredentials = Callable[[], Mapping[str, Any]]


class ZaloAccessTokens:
    """The OA access token to send with; refreshes it when due (see the module docstring)."""

    def __init__(
        self,
        store: TokenStore,
        credentials: AppCredentials,
        clock: Clock,
        oauth_url: str = ZALO_OAUTH_URL,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.store = store
        self.credentials = credentials
        self.clock = clock
        self.oauth_url = oauth_url
        self.timeout = timeout

    def current(self) -> str:
        pair = self.store.load()
        if pair is not None and pair.access_expires_at - REFRESH_MARGIN > self.clock.now():
            return pair.access_token
        return self.refresh(pair)

    def refresh(self, read: TokenPair | None = None, *, rejected: str | None = None) -> str:
        """A new access token. ``rejected``: the token Zalo just refused; if another container has
        replaced it meanwhile, that newer one is used instead of refreshing again."""
        if read is None:
            read = self.store.load()
        if read is not None and rejected is not None and read.access_token != rejected:
            return read.access_token
        now = self.clock.now()
        lease_id = uuid.uuid4().hex
        if not self.store.take_lease(read, lease_id, now + LEASE_DURATION, now):
            # Someone refreshed since we read (use theirs), or is refreshing now (retry the message later).
            latest = self.store.load()
            if latest is not None and latest != read and latest.access_expires_at - REFRESH_MARGIN > now:
                return latest.access_token
            raise ZaloTokenError("the Zalo access token is being refreshed by another attempt")
        app = self.credentials()
        refresh_token = read.refresh_token if read is not None else str(app.get("refresh_token") or "")
        if not refresh_token or not app.get("app_id") or not app.get("secret_key"):
            raise ZaloTokenError("the Zalo secret needs app_id, secret_key and a first refresh_token")
        reply = post_form(
            self.oauth_url,
            {"app_id": str(app["app_id"]), "grant_type": "refresh_token", "refresh_token": refresh_token},
            headers={"secret_key": str(app["secret_key"])},
            timeout=self.timeout,
        )
        answer = _json(reply.body)
        if reply.status != 200 or not answer.get("access_token") or not answer.get("refresh_token"):
            reason = answer.get("error_description") or answer.get("error_name") or answer.get("error") or reply.status
            raise ZaloTokenError(f"Zalo refused the token refresh: {reason}")
        pair = TokenPair(
            access_token=str(answer["access_token"]),
            refresh_token=str(answer["refresh_token"]),
            access_expires_at=now + timedelta(seconds=int(answer.get("expires_in") or 3600)),
        )
        if not self.store.store(pair, lease_id):
            # Our lease ran out and someone else refreshed: theirs is the pair in force.
            raise ZaloTokenError("the Zalo token lease expired during the refresh")
        return pair.access_token


class DynamoTokenStore:
    """TokenStore on one ConfigTable item; every write is conditional (no check-then-write race)."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def load(self) -> TokenPair | None:
        item = self.client.get_item(TableName=self.table_name, Key=_key(), ConsistentRead=True).get("Item")
        if not item or "access_token" not in item:
            return None
        return TokenPair(
            access_token=item["access_token"]["S"],
            refresh_token=item["refresh_token"]["S"],
            access_expires_at=datetime.fromisoformat(item["access_expires_at"]["S"]),
        )

    def take_lease(self, read: TokenPair | None, lease_id: str, until: datetime, now: datetime) -> bool:
        free = "(attribute_not_exists(lease_until) OR lease_until < :now)"
        values: dict[str, Any] = {
            ":lease": {"S": lease_id},
            ":until": {"S": until.isoformat()},
            ":now": {"S": now.isoformat()},
        }
        if read is None:
            condition = f"attribute_not_exists(refresh_token) AND {free}"
        else:
            condition = f"refresh_token = :read AND {free}"
            values[":read"] = {"S": read.refresh_token}
        return self._conditional(
            UpdateExpression="SET lease_id = :lease, lease_until = :until",
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
        )

    def store(self, pair: TokenPair, lease_id: str) -> bool:
        return self._conditional(
            UpdateExpression="SET access_token = :access, refresh_token = :refresh, access_expires_at = :expires "
            "REMOVE lease_id, lease_until",
            ConditionExpression="lease_id = :lease",
            ExpressionAttributeValues={
                ":access": {"S": pair.access_token},
                ":refresh": {"S": pair.refresh_token},
                ":expires": {"S": pair.access_expires_at.isoformat()},
                ":lease": {"S": lease_id},
            },
        )

    def _conditional(self, **update: Any) -> bool:
        try:
            self.client.update_item(TableName=self.table_name, Key=_key(), **update)
        except ClientError as error:
            if error.response["Error"]["Code"] != CONDITION_FAILED:
                raise
            return False
        return True


def _key() -> dict[str, Any]:
    return {"id": {"S": TOKEN_ITEM_ID}}


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
