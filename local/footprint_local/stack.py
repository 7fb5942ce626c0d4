"""The whole of Footprint in one process: moto, the tracking API, the functions and what drives them.

``LocalStack`` is what ``make run`` starts and what the end-to-end tests embed::

    with LocalStack(port=0, clock=ManualClock(start)) as stack:
        requests.post(f"{stack.api_url}/v1/track", ...)
        stack.wait_until(lambda: stack.state()["events"])

Everything it creates comes from infra/template.yaml (through ``footprint_local.template``); the
one clock it installs (``footprint.clock.use_clock``) is the one the handlers and the pumps read.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from footprint import clock as stack_clock
from footprint import settings as footprint_settings
from footprint.adapters.steps import STEP_LOGGER
from footprint.clock import Clock, WarpClock
from footprint.models.channels import ChannelSettings
from footprint_local.activity import READABLE_LOGGERS, ActivityLog, StackTimeFilter
from footprint_local.aws import AwsClients, MotoServer, aws_environment
from footprint_local.events import CorsPolicy
from footprint_local.http_server import LocalApplication, LocalHttpServer
from footprint_local.lambdas import Handler, LambdaFunction
from footprint_local.pumps import Pump, SchedulerPump, SqsPump, StreamPump
from footprint_local.resources import (
    StackResources,
    create_vapid_secret,
    provision,
    publish_journeys,
    seed_demo_source,
    verify_sender,
)
from footprint_local.state import StackState
from footprint_local.template import EventSourceSpec, Template, load_template
from footprint_local.vapid import new_vapid_secret

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_WRITE_KEY = "demo-write-key"
# The demo shop backend's trusted key, and the secret that signs userIds for the demo page: local
# values only (a deployment keeps both out of pages and out of the repository).
DEFAULT_SERVER_WRITE_KEY = "demo-server-key"
DEMO_IDENTITY_SECRET = "demo-identity-secret"  # noqa: S105 (a local demo value, documented)
DEFAULT_STACK_NAME = "footprint-local"
# Without a bound, Lambda retries a failing stream batch until the record expires; locally it would
# block the shard for good.
DEFAULT_STREAM_RETRIES = 2


class LocalStack:
    """Starts and stops the local stack; every port may be 0 (a free one)."""

    def __init__(
        self,
        *,
        port: int = 4000,
        moto_port: int = 0,
        clock: Clock | None = None,
        write_key: str = DEFAULT_WRITE_KEY,
        server_write_key: str = DEFAULT_SERVER_WRITE_KEY,
        template: Template | None = None,
        template_path: Path | str | None = None,
        stack_name: str = DEFAULT_STACK_NAME,
        journeys_dir: Path | None = None,
        handler_log_level: str = "WARNING",
        sqs_retry_seconds: int | None = 2,
        stream_retry_pause_seconds: float = 0.2,
        scheduler_poll_seconds: float = 0.2,
    ) -> None:
        self.clock: Clock = clock or WarpClock(1.0)
        self.write_key = write_key
        self.server_write_key = server_write_key
        self.identity_secret = DEMO_IDENTITY_SECRET
        self.template = template or load_template(template_path)
        self.stack_name = stack_name
        self._journeys_dir = journeys_dir
        self._port = port
        self._moto = MotoServer(moto_port)
        self._handler_log_level = handler_log_level.upper()
        self._sqs_retry_seconds = sqs_retry_seconds
        self._stream_retry_pause_seconds = stream_retry_pause_seconds
        self._scheduler_poll_seconds = scheduler_poll_seconds
        self.activity = ActivityLog(self.clock)
        self._activity_filter = StackTimeFilter(self.clock)
        self.functions: dict[str, LambdaFunction] = {}
        self.pumps: list[Pump] = []
        self.scheduler_pump: SchedulerPump | None = None
        self._http: LocalHttpServer | None = None
        self._clients: AwsClients | None = None
        self._resources: StackResources | None = None
        self._saved_environment: dict[str, str | None] = {}
        self._previous_clock: Clock | None = None
        self._started = False
        self.vapid_public_key = ""
        # The send function's channel settings (footprint.models.channels.ChannelSettings' fields).
        self.channel_settings: dict[str, str] = {}

    # ------------------------------------------------------------------------------ lifecycle

    def start(self) -> LocalStack:
        if self._started:
            raise RuntimeError("this LocalStack is already running")
        started = time.monotonic()
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        logger.info("local stack ready in %.1f s at %s", time.monotonic() - started, self.api_url)
        return self

    def _start(self) -> None:
        # The port first: a busy one stops everything before anything started.
        self._http = LocalHttpServer(self._port)
        # Then the clock: whatever runs from here on (handlers, pumps, logs) reads this one.
        self._previous_clock = stack_clock.current_clock()
        stack_clock.use_clock(self.clock)
        for name in READABLE_LOGGERS:
            logging.getLogger(name).addHandler(self.activity)
        # Steps are INFO lines of the evaluate function, whose own log level may be higher.
        logging.getLogger(STEP_LOGGER).setLevel(logging.INFO)
        self.activity.addFilter(self._activity_filter)

        endpoint = self._moto.start()
        self._set_environment(aws_environment(endpoint))
        self._clients = AwsClients(endpoint)
        self._resources = provision(self.template, self._clients, self.stack_name)

        # One key pair for both halves: the public key is a stack parameter (the settings route serves
        # it), the private key the secret send signs with.
        vapid_secret = new_vapid_secret("mailto:local@example.com")
        self.vapid_public_key = str(vapid_secret["public_key"])
        self._build_functions()
        seed_demo_source(self._clients, self._resources, self.write_key, self.server_write_key, self.identity_secret)
        # What a deployment sets up by hand before the first send: a verified sender, VAPID keys.
        sender = os.environ.get("SENDER_EMAIL")
        if sender:
            verify_sender(self._clients, sender)
        vapid_secret_name = os.environ.get("VAPID_SECRET_NAME")
        if vapid_secret_name:
            create_vapid_secret(self._clients, vapid_secret_name, vapid_secret)
        if self._journeys_dir is not None:
            publish_journeys(self._clients, self._resources, self._journeys_dir)

        self._build_pumps()
        for pump in self.pumps:
            pump.start()

        self._http.serve(
            LocalApplication(
                routes=self.template.http_routes,
                functions=self.functions,
                clock=self.clock,
                cors=self._cors_policy(),
                state=self.state,
                demo_config=lambda: {"writeKey": self.write_key, "vapidPublicKey": self.vapid_public_key},
                stack_info=lambda: {
                    "aws_environment": aws_environment(self.moto_endpoint),
                    "tables": {logical_id: table.ref for logical_id, table in self.resources.tables.items()},
                    "schedule_groups": {key: group.ref for key, group in self.resources.schedule_groups.items()},
                    # What turns channels on for the send function: footprint validate and publish check it.
                    "channels": self.channel_settings,
                },
                on_clock_moved=self.wake_pumps,
            )
        )

    def stop(self) -> None:
        """Stop the HTTP server, the pumps and moto; put back the process clock and environment."""
        if not self._started:
            return
        self._started = False
        if self._http is not None:
            self._http.stop()
            self._http = None
        for pump in self.pumps:
            pump.stop()
        for pump in self.pumps:
            pump.join()
        self.pumps = []
        self._moto.stop()
        for function in self.functions.values():
            function.unload()
        self._restore_environment()
        _forget_cached_clients()
        if self._previous_clock is not None:
            stack_clock.use_clock(self._previous_clock)
        self.activity.removeFilter(self._activity_filter)
        for name in READABLE_LOGGERS:
            logging.getLogger(name).removeHandler(self.activity)
        logger.info("local stack stopped")

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------------------ what tests use

    @property
    def api_url(self) -> str:
        """Base URL of the tracking API (and of the local page, /_local/, and the demo, /demo/)."""
        if self._http is None:
            raise RuntimeError("the stack is not running")
        return self._http.url

    @property
    def local_page_url(self) -> str:
        return f"{self.api_url}/_local/"

    @property
    def demo_url(self) -> str:
        return f"{self.api_url}/demo/"

    @property
    def moto_endpoint(self) -> str:
        return self._moto.endpoint_url

    @property
    def clients(self) -> AwsClients:
        if self._clients is None:
            raise RuntimeError("the stack is not running")
        return self._clients

    @property
    def resources(self) -> StackResources:
        if self._resources is None:
            raise RuntimeError("the stack is not running")
        return self._resources

    def state(self) -> dict[str, Any]:
        """What the local page shows (also served as /_local/state.json)."""
        return StackState(
            clients=self.clients,
            resources=self.resources,
            clock=self.clock,
            functions=self.functions,
            dead_letter_queues=self._dead_letter_queues(),
            pending_schedules=self.scheduler_pump.pending if self.scheduler_pump else list,
            activity=self.activity,
        ).snapshot()

    def advance(self, delta: timedelta) -> None:
        """Move the stack clock (a ManualClock or WarpClock) and let the pumps look at once."""
        advance: Callable[[timedelta], None] | None = getattr(self.clock, "advance", None)
        if advance is None:
            raise TypeError(f"{type(self.clock).__name__} cannot be moved")
        advance(delta)
        self.wake_pumps()

    def wake_pumps(self) -> None:
        for pump in self.pumps:
            pump.wake()

    def wait_until(
        self, predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, message: str = ""
    ) -> T:
        """Poll ``predicate`` until it returns something truthy (the pumps run asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(message or f"condition not met within {timeout} s")
            time.sleep(interval)

    def wait_for_pump_cycles(self, pump: Pump, cycles: int = 2, timeout: float = 10.0) -> None:
        """Wait until ``pump`` has polled ``cycles`` more times (to check that something did NOT happen)."""
        target = pump.cycles + cycles
        pump.wake()
        self.wait_until(lambda: pump.cycles >= target, timeout, message=f"pump {pump.name} is not polling")

    @contextmanager
    def override_handler(self, function_logical_id: str, handler: Handler) -> Iterator[list[Any]]:
        """Run ``handler`` in place of a function's module; yields the list of events it received."""
        received: list[Any] = []

        def recording(event: Any, context: Any) -> Any:
            received.append(event)
            return handler(event, context)

        with self.functions[function_logical_id].override(recording):
            self.wake_pumps()
            yield received

    def curl_example(self) -> str:
        """A ready-to-paste tracking call with the demo write key."""
        paths = [route.path for route in self.template.http_routes if route.method in ("POST", "ANY")]
        path = next((path for path in paths if path.endswith("/track")), paths[0] if paths else "/v1/track")
        body = (
            '{"event":"product_viewed","anonymousId":"curl-visitor",'
            '"properties":{"product_id":"vay-nu-he","name":"Váy nữ phong cách hè","price":459000,"currency":"VND"}}'
        )
        return f"curl -sS -u {self.write_key}: -H 'content-type: application/json' {self.api_url}{path} -d '{body}'"

    # ------------------------------------------------------------------------------ wiring

    def _build_functions(self) -> None:
        resources = self.resources
        parameters = {
            "Stage": "local",
            "LogLevel": self._handler_log_level,
            "VapidPublicKey": self.vapid_public_key,
            # As a deployment sets it to its verified SES identity (moto's SES verifies it below).
            "SenderEmail": "noreply@example.com",
            # The demo and the tests run their push services on loopback.
            "AllowLoopbackDestinations": "true",
        }
        environments = {
            spec.logical_id: self.template.function_environment(
                resources.physical, spec.logical_id, parameters=parameters, stack_name=self.stack_name
            )
            for spec in self.template.functions
        }
        send = environments.get("SendFunction", {})
        self.channel_settings = {name: send.get(name.upper(), "") for name in ChannelSettings.model_fields}
        # Email links point at the API's public URL: here, the local server.
        for environment in environments.values():
            if "PUBLIC_API_URL" in environment:
                environment["PUBLIC_API_URL"] = self.api_url
        # The functions share one process: what they agree on goes into os.environ (also a variable
        # only some functions have, such as send's PUBLIC_API_URL: settings are read at the first
        # call, not at import); what differs is set only while each module is imported.
        shared = _unambiguous_items(list(environments.values()))
        # No EMF metric lines on the console (there is no CloudWatch to read them). Powertools'
        # POWERTOOLS_DEV would pretty-print logs but also turns on the event handler's debug prints.
        local = {"POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true")}
        self._set_environment(shared | local)
        _forget_cached_clients()
        for spec in self.template.functions:
            physical = resources.functions[spec.logical_id]
            own = {name: value for name, value in environments[spec.logical_id].items() if name not in shared}
            self.functions[spec.logical_id] = LambdaFunction(
                logical_id=spec.logical_id,
                physical_name=physical.ref,
                arn=physical.attributes["Arn"],
                code_dir=spec.code_path,
                handler=spec.handler,
                timeout_seconds=spec.timeout_seconds,
                memory_mb=spec.memory_mb,
                import_environment=own,
            )
        for function in self.functions.values():
            function.describe()  # imports what exists now; logs what does not

    def _build_pumps(self) -> None:
        resources = self.resources
        receive_counts = {queue.logical_id: queue.max_receive_count for queue in self.template.queues}
        dead_letters = {queue.logical_id: queue.redrive_target_logical_id for queue in self.template.queues}
        for source in self.template.event_source_mappings:
            function = self.functions[source.function_logical_id]
            if source.source_type == "DynamoDB":
                self.pumps.append(self._stream_pump(source, function))
                continue
            dead_letter = dead_letters.get(source.source_logical_id)
            self.pumps.append(
                SqsPump(
                    clients=self.clients,
                    source_name=source.source_logical_id,
                    queue_url=resources.queue_url(source.source_logical_id),
                    queue_arn=resources.queue_arn(source.source_logical_id),
                    function=function,
                    batch_size=source.batch_size,
                    accepts=source.accepts,
                    report_batch_item_failures=source.report_batch_item_failures,
                    max_receive_count=receive_counts.get(source.source_logical_id),
                    dead_letter_name=dead_letter,
                    success_label=_success_label(source),
                    retry_visibility_seconds=self._sqs_retry_seconds,
                )
            )
        functions_by_arn = {function.arn: function for function in self.functions.values()}
        self.scheduler_pump = SchedulerPump(
            clients=self.clients,
            clock=self.clock,
            groups=[resources.schedule_group_name(group) for group in self.template.schedule_groups],
            function_for_arn=lambda arn: functions_by_arn.get(arn.split(":$")[0]),
            poll_seconds=self._scheduler_poll_seconds,
        )
        self.pumps.append(self.scheduler_pump)

    def _stream_pump(self, source: EventSourceSpec, function: LambdaFunction) -> StreamPump:
        resources = self.resources
        table = resources.tables[source.source_logical_id]
        retries = source.maximum_retry_attempts
        return StreamPump(
            clients=self.clients,
            clock=self.clock,
            source_name=source.source_logical_id,
            stream_arn=table.attributes["StreamArn"],
            function=function,
            batch_size=source.batch_size,
            accepts=source.accepts,
            max_retries=retries if retries is not None and retries >= 0 else DEFAULT_STREAM_RETRIES,
            bisect_on_function_error=source.bisect_batch_on_function_error,
            report_batch_item_failures=source.report_batch_item_failures,
            on_failure_queue_url=(
                resources.queue_url(source.on_failure_logical_id) if source.on_failure_logical_id else None
            ),
            starting_position=source.starting_position or "LATEST",
            retry_pause_seconds=self._stream_retry_pause_seconds,
        )

    def _dead_letter_queues(self) -> set[str]:
        """Queues nothing consumes that collect failures: redrive targets and on-failure destinations."""
        queues = {queue.redrive_target_logical_id for queue in self.template.queues}
        queues |= {source.on_failure_logical_id for source in self.template.event_source_mappings}
        consumed = {source.source_logical_id for source in self.template.event_source_mappings}
        queues |= {logical_id for logical_id in self.resources.queues if logical_id not in consumed}
        return {queue for queue in queues if queue}

    def _cors_policy(self) -> CorsPolicy | None:
        """The tracking API's CORS: CorsConfiguration, or x-amazon-apigateway-cors in its DefinitionBody."""
        apis = {route.api_logical_id for route in self.template.http_routes}
        for logical_id, properties in self.template.resources_of_type("AWS::Serverless::HttpApi"):
            if apis and logical_id not in apis:
                continue
            configuration = properties.get("CorsConfiguration") or (
                (properties.get("DefinitionBody") or {}).get("x-amazon-apigateway-cors")
            )
            if configuration is True:
                return CorsPolicy(allow_origins=("*",), allow_methods=("*",), allow_headers=("*",))
            if isinstance(configuration, dict):
                return CorsPolicy.from_configuration(self._resolve_parameters(configuration))
        return None

    def _resolve_parameters(self, value: Any) -> Any:
        """Resolve ``!Ref Parameter`` with the template's defaults (all a CORS block may reference)."""
        if isinstance(value, dict) and set(value) == {"Ref"}:
            declared = (self.template.document.get("Parameters") or {}).get(value["Ref"], {})
            default = self.template.parameter_defaults.get(value["Ref"])
            if "List" in str(declared.get("Type", "")) and isinstance(default, str):
                return [item.strip() for item in default.split(",")]
            return default
        if isinstance(value, dict):
            return {name: self._resolve_parameters(item) for name, item in value.items()}
        if isinstance(value, list):
            return [self._resolve_parameters(item) for item in value]
        return value

    # ------------------------------------------------------------------------------ environment

    def _set_environment(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            if name not in self._saved_environment:
                self._saved_environment[name] = os.environ.get(name)
            os.environ[name] = value

    def _restore_environment(self) -> None:
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment = {}


def _unambiguous_items(environments: list[dict[str, str]]) -> dict[str, str]:
    """Variables every function that has them sets to the same value."""
    values: dict[str, set[str]] = {}
    for environment in environments:
        for name, value in environment.items():
            values.setdefault(name, set()).add(value)
    return {name: next(iter(found)) for name, found in values.items() if len(found) == 1}


def _success_label(source: EventSourceSpec) -> str:
    """The log wording for a delivered message: what it means in Footprint."""
    if source.function_logical_id == "SendFunction":
        return "message sent"
    if source.source_logical_id == "TimersQueue":
        return "wake-up delivered"
    return f"delivered to {source.function_logical_id}"


def _forget_cached_clients() -> None:
    """Settings and boto3 clients are cached per cold start; a new stack is a new cold start."""
    footprint_settings.get_settings.cache_clear()
    # The composition roots (footprint.adapters.wiring, send_wiring, ...) each offer reset().
    for name, module in list(sys.modules.items()):
        if name.startswith("footprint.adapters.") and name.endswith("wiring"):
            reset = getattr(module, "reset", None)
            if callable(reset):
                reset()
