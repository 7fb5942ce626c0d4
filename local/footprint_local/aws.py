"""moto in server mode, on loopback, inside the local stack's process.

The handlers run in the same process and reach moto over HTTP through ``AWS_ENDPOINT_URL``, exactly
as they reach AWS in Lambda: no mocks are patched into boto3.
"""

from __future__ import annotations

import logging
import urllib.request
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_ses import SESClient
    from mypy_boto3_sqs import SQSClient

REGION = "us-east-1"
# moto's default account; ARNs built by the stack must agree with the ones moto returns.
ACCOUNT_ID = "123456789012"
LOOPBACK = "127.0.0.1"

logger = logging.getLogger(__name__)


def aws_environment(endpoint_url: str) -> dict[str, str]:
    """What every boto3 client of the process needs to talk to the local moto server."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        # Current botocore builds account-based DynamoDB endpoints; moto's streams need them off.
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }


class MotoServer:
    """A ThreadedMotoServer bound to loopback, with a clean slate on start and stop."""

    def __init__(self, port: int = 0) -> None:
        self._requested_port = port
        self._server: ThreadedMotoServer | None = None
        self.endpoint_url = ""

    def start(self) -> str:
        # Werkzeug logs every request at INFO; the stack logs what matters itself.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=self._requested_port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        # moto's backends are process-wide: start from nothing even if an earlier stack (or a test
        # using mock_aws) left resources behind.
        self.reset()
        return self.endpoint_url

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
            response.read()

    def stop(self) -> None:
        if self._server is None:
            return
        try:
            self.reset()
        except OSError:
            logger.debug("moto reset on stop failed", exc_info=True)
        self._server.stop()
        self._server = None


class AwsClients:
    """boto3 clients of the stack's own machinery (pumps, provisioning, local page)."""

    def __init__(self, endpoint_url: str) -> None:
        self._session = boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
            region_name=REGION,
        )
        # Short timeouts: everything is on loopback, and a stuck call must not hang shutdown.
        config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2, "mode": "standard"})
        kwargs: dict[str, Any] = {"endpoint_url": endpoint_url, "config": config}
        self.dynamodb: DynamoDBClient = self._session.client("dynamodb", **kwargs)
        self.streams: DynamoDBStreamsClient = self._session.client("dynamodbstreams", **kwargs)
        self.sqs: SQSClient = self._session.client("sqs", **kwargs)
        self.scheduler: EventBridgeSchedulerClient = self._session.client("scheduler", **kwargs)
        self.ses: SESClient = self._session.client("ses", **kwargs)
        self.secrets: SecretsManagerClient = self._session.client("secretsmanager", **kwargs)
