"""Settings every test shares: no real AWS, no X-Ray, quiet Powertools."""

from __future__ import annotations

import os

os.environ.update(
    {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        # moto's DynamoDB Streams with current boto3 (see docs/architecture.md, "Local stack").
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_SERVICE_NAME": "footprint",
        "POWERTOOLS_METRICS_NAMESPACE": "Footprint",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)
