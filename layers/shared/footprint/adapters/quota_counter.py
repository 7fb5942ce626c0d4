"""The daily event counters of footprint.services.quotas, in ConfigTable.

Item ``id = "quota/{source_id}/{YYYY-MM-DD}"`` (UTC day) with ``events`` (a number, only ever
ADDed to) and ``expires_at`` (DynamoDB TTL, a couple of days after the day ends). Track may
update only ``quota/`` items of ConfigTable (a dynamodb:LeadingKeys condition in the template).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from footprint.models import keys
from footprint.services.tracking import StoreUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Kept past its day only for an operator to look at; nothing reads an old day.
COUNTER_RETENTION = timedelta(days=2)


class DynamoDailyCounter:
    """The DailyCounter port: one UpdateItem (ADD, then the new total read back) per sync."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def add(self, source_id: str, day: date, count: int) -> int:
        day_end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key={"id": {"S": keys.quota_counter(source_id, day)}},
                UpdateExpression="ADD events :count SET expires_at = if_not_exists(expires_at, :expires)",
                ExpressionAttributeValues={
                    ":count": {"N": str(count)},
                    ":expires": {"N": str(int((day_end + COUNTER_RETENTION).timestamp()))},
                },
                ReturnValues="UPDATED_NEW",
            )
        except (ClientError, BotoCoreError) as error:
            raise StoreUnavailableError("store_unavailable", "the daily quota counter cannot be updated") from error
        return int(response["Attributes"]["events"]["N"])
