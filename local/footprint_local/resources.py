"""Creates the template's tables, queues, schedule groups and generated secrets on moto, under local
physical names.

Nothing here lists a resource by hand: every table, queue (with its redrive policy), schedule
group and secret comes from infra/template.yaml through ``footprint_local.template``. Physical names follow
CloudFormation's habit of prefixing the stack name: ``footprint-local-EventsTable``.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from footprint_local.aws import ACCOUNT_ID, REGION
from footprint_local.template import PhysicalResource, Template
from footprint_local.vapid import new_vapid_secret

if TYPE_CHECKING:
    from footprint_local.aws import AwsClients

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StackResources:
    """What each logical id of the template is called in the running local stack."""

    stack_name: str
    tables: dict[str, PhysicalResource] = field(default_factory=dict)
    queues: dict[str, PhysicalResource] = field(default_factory=dict)
    schedule_groups: dict[str, PhysicalResource] = field(default_factory=dict)
    secrets: dict[str, PhysicalResource] = field(default_factory=dict)
    functions: dict[str, PhysicalResource] = field(default_factory=dict)
    # Everything else a template value may reference (roles, layers, log groups, the API).
    others: dict[str, PhysicalResource] = field(default_factory=dict)

    @property
    def physical(self) -> dict[str, PhysicalResource]:
        return self.others | self.functions | self.secrets | self.schedule_groups | self.queues | self.tables

    def table_name(self, logical_id: str) -> str:
        return self.tables[logical_id].ref

    def queue_url(self, logical_id: str) -> str:
        return self.queues[logical_id].ref

    def queue_arn(self, logical_id: str) -> str:
        return self.queues[logical_id].attributes["Arn"]

    def queue_name(self, logical_id: str) -> str:
        return self.queues[logical_id].attributes["QueueName"]

    def schedule_group_name(self, logical_id: str) -> str:
        return self.schedule_groups[logical_id].ref


def physical_name(stack_name: str, logical_id: str) -> str:
    return f"{stack_name}-{logical_id}"


def provision(template: Template, clients: AwsClients, stack_name: str) -> StackResources:
    """Create every table, queue, schedule group and generated secret of the template; name everything else."""
    resources = StackResources(stack_name=stack_name)
    for table in template.tables:
        name = physical_name(stack_name, table.logical_id)
        description = clients.dynamodb.create_table(**table.create_table_kwargs(name))["TableDescription"]
        if table.ttl_attribute:
            clients.dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )
        resources.tables[table.logical_id] = PhysicalResource.table(
            name, description["TableArn"], description.get("LatestStreamArn")
        )
    # The loader orders dead-letter queues before the queues that redrive to them.
    for queue in template.queues:
        name = physical_name(stack_name, queue.logical_id)
        if queue.attributes.get("FifoQueue") == "true":
            name += ".fifo"
        dead_letter_arn = (
            resources.queue_arn(queue.redrive_target_logical_id) if queue.redrive_target_logical_id else None
        )
        url = clients.sqs.create_queue(QueueName=name, Attributes=queue.create_queue_attributes(dead_letter_arn))[
            "QueueUrl"
        ]
        arn = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        resources.queues[queue.logical_id] = PhysicalResource.queue(url, arn)
    for group_logical_id in template.schedule_groups:
        name = physical_name(stack_name, group_logical_id)
        arn = clients.scheduler.create_schedule_group(Name=name)["ScheduleGroupArn"]
        resources.schedule_groups[group_logical_id] = PhysicalResource.named(name, arn)
    for secret_logical_id, props in template.resources_of_type("AWS::SecretsManager::Secret"):
        name = physical_name(stack_name, secret_logical_id)
        arn = clients.secrets.create_secret(Name=name, SecretString=generated_secret_string(props))["ARN"]
        # A secret's !Ref is its ARN, as in CloudFormation.
        resources.secrets[secret_logical_id] = PhysicalResource.named(arn, arn)
    for function in template.functions:
        name = physical_name(stack_name, function.logical_id)
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
        resources.functions[function.logical_id] = PhysicalResource.named(name, arn)
    known = resources.physical
    for logical_id, resource in template.resources.items():
        if logical_id not in known:
            resources.others[logical_id] = _named_only(stack_name, logical_id, str(resource.get("Type", "")))
    logger.info(
        "created %d tables, %d queues, %d schedule group(s) from the template",
        len(resources.tables),
        len(resources.queues),
        len(resources.schedule_groups),
    )
    return resources


def generated_secret_string(props: dict[str, object]) -> str:
    """The value CloudFormation's GenerateSecretString would create (the options the template uses)."""
    spec = props.get("GenerateSecretString")
    if not isinstance(spec, dict):
        return str(props.get("SecretString") or "")
    alphabet = string.ascii_letters + string.digits
    if not spec.get("ExcludePunctuation"):
        alphabet += "!#$%&()*+,-.:;<=>?@[]^_{|}~"
    value = "".join(secrets.choice(alphabet) for _ in range(int(str(spec.get("PasswordLength", 32)))))
    key = spec.get("GenerateStringKey")
    if not key:
        return value
    return json.dumps(json.loads(str(spec.get("SecretStringTemplate") or "{}")) | {str(key): value})


def _named_only(stack_name: str, logical_id: str, resource_type: str) -> PhysicalResource:
    """A resource moto does not need to hold, but whose name or ARN a function may be given."""
    name = physical_name(stack_name, logical_id)
    arns = {
        "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT_ID}:role/{name}",
        "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}",
        "AWS::Serverless::LayerVersion": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:layer:{name}:1",
    }
    return PhysicalResource.named(name, arns.get(resource_type))


def seed_demo_source(
    clients: AwsClients,
    resources: StackResources,
    write_key: str,
    server_write_key: str | None = None,
    identity_secret: str | None = None,
) -> None:
    """The demo shop's sources, so the demo page and the printed curl line work out of the box: the
    page's key (browser calls; userIds count with a user_hash signed by ``identity_secret``) and,
    for backend calls, a trusted key of the same source (docs/architecture.md, trust model)."""
    source: dict[str, object] = {
        "source_id": "demo",
        "name": "Demo shop",
        "allowed_origins": ["http://localhost:*", "http://127.0.0.1:*"],
    }
    if identity_secret:
        source["identity_secret"] = identity_secret
    items = {write_key: source}
    if server_write_key:
        items[server_write_key] = {"source_id": "demo", "name": "Demo shop backend", "trusted": True}
    for key, value in items.items():
        clients.dynamodb.put_item(
            TableName=resources.table_name("ConfigTable"),
            Item={"id": {"S": f"source/{key}"}, "value": {"S": json.dumps(value)}},
        )


def verify_sender(clients: AwsClients, sender_email: str) -> None:
    """SES (and moto) refuse to send from an unverified address; deployed stacks verify it by hand."""
    clients.ses.verify_email_identity(EmailAddress=sender_email)


def create_vapid_secret(clients: AwsClients, secret_name: str, secret: dict[str, Any] | None = None) -> str:
    """The VAPID key pair (``secret``, else a fresh one) in the secret web push reads (deployed stacks
    create it once by hand).

    Returns the public key (base64url, uncompressed P-256 point): the browser's applicationServerKey,
    which the stack also passes to its functions as the VapidPublicKey parameter.
    """
    secret = secret or new_vapid_secret("mailto:local@example.com")
    clients.secrets.create_secret(Name=secret_name, SecretString=json.dumps(secret))
    return str(secret["public_key"])


def publish_journeys(clients: AwsClients, resources: StackResources, directory: Path) -> list[str]:
    """Publish every journey YAML of ``directory`` (the repository's examples), as the CLI would.

    A journey that does not load is logged and skipped: the stack starts anyway.
    """
    try:
        from footprint.adapters.journey_catalog import DynamoJourneyCatalog
        from footprint.models.journey import load_journey_yaml
        from footprint.services.content import inline_templates, templates_folder
    except ImportError as error:
        logger.warning("journeys not published: %s", error)
        return []
    catalog = DynamoJourneyCatalog(clients.dynamodb, resources.table_name("ConfigTable"), cache_seconds=0)
    published = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            text = inline_templates(path.read_text(encoding="utf-8"), templates_folder(path), origin=path.name)
            journey = load_journey_yaml(text, origin=path.name)
            catalog.publish(journey, text)
        except Exception as error:
            logger.warning("journey %s not published: %s", path.name, error)
            continue
        published.append(f"{journey.id} v{journey.version} ({journey.status})")
    if published:
        logger.info("published journeys: %s", ", ".join(published))
    return published
