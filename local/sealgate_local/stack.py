"""The whole gateway on one machine: moto, the template's resources, partner sandboxes, functions, API, poller.

What :class:`LocalStack` starts, in order, and stops in reverse:

1. moto's server on 127.0.0.1 (a free port): Secrets Manager, SQS, DynamoDB, CloudWatch (and SNS, for the
   alarms' topic);
2. the queues, tables, alarm topic, CloudWatch alarms and throwaway partner secrets ``template.yaml`` declares
   (:mod:`sealgate_local.aws_stack`), and the EMF lines the functions print turned into metric data in moto's
   CloudWatch (:mod:`sealgate_local.emf_to_cloudwatch`); the functions read their secrets through the AWS
   Parameters and Secrets Lambda Extension's protocol, served in front of moto (:mod:`sealgate_local.secrets_extension`);
3. one partner sandbox per profile over HTTPS, under a throwaway CA, made from the profile and its throwaway
   secret (:mod:`sealgate_local.sandboxes`);
4. one worker pool per function (:mod:`sealgate_local.worker`), each worker a process with the function's
   environment from the template plus the local overrides: moto's endpoint and dummy credentials,
   ``SEALGATE_CA_BUNDLE`` (the sandboxes' CA: trusted by configuration, verification stays on) and, for the
   functions an SQS queue triggers, ``SEALGATE_BASE_URL_<PARTNER>`` (the sandboxes);
5. the local API (:mod:`sealgate_local.api_server`) and one poller per SQS event source
   (:mod:`sealgate_local.sqs_poller`). With ``iam_auth=True`` the local API checks SigV4 on every route but the
   webhooks, as API Gateway does, against :attr:`LocalStack.credentials` (throwaway, made afresh each start;
   ``make run``, ``make demo`` and ``make load`` turn it on; the default leaves the IAM routes open to plain
   requests, as the tests that drive the functions through the local API expect).

Every worker runs this checkout's code: its ``sealgate`` from ``layers/crypto`` (put first on the worker's path,
whatever the venv's editable install points at) and its handler from ``functions/``; each worker reports where
it loaded them from (:meth:`LocalStack.loaded_outside` lists anything from elsewhere). With ``built=True`` the
functions run from ``sam build``'s output (``.aws-sam/build/<Function>``, the built
layer's ``sealgate`` on the path), so packaging mistakes show up. Nothing here talks to a real AWS account:
the workers' environment is built from scratch, with credentials that only moto accepts.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sealgate_local import aws_stack
from sealgate_local.alarms import AlarmState, judge
from sealgate_local.api_server import ApiServer, Route, routes_from_template
from sealgate_local.emf_to_cloudwatch import EmfToCloudWatch, Series, totals
from sealgate_local.function_logs import FunctionLogs
from sealgate_local.lifecycle import Service
from sealgate_local.secrets_extension import SecretsExtension
from sealgate_local.sigv4 import LocalCredentials
from sealgate_local.sqs_poller import SqsPoller, sqs_sources
from sealgate_local.worker import FunctionSpec, Invocation, Origins, WorkerPool

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

    from sealgate_local.sandboxes import Sandboxes

ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = ROOT / ".aws-sam" / "build"
#: The checkout's layer: the folder holding its ``sealgate`` package.
LAYER_DIR = ROOT / "layers" / "crypto"
REGION = "us-east-1"
# Only moto accepts these; they keep a developer's own AWS credentials out of the workers.
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local-moto", "AWS_SECRET_ACCESS_KEY": "local-moto"}  # nosec B105 - moto accepts any


class LocalStack(Service):
    """The local gateway; a context manager (``with LocalStack() as stack: ... stack.base_url``)."""

    def __init__(
        self,
        *,
        built: bool = False,
        stage: str = "dev",
        parameters: Mapping[str, str] | None = None,
        environment: Mapping[str, Mapping[str, str]] | None = None,
        pool_size: int = 3,
        echo: Callable[[str, str], None] | None = None,
        template_path: Path = aws_stack.TEMPLATE,
        profiles_dir: str | Path | None = None,
        iam_auth: bool = False,
        on_auth_refusal: Callable[[str], None] | None = None,
    ) -> None:
        """``parameters`` override the template's; ``environment`` adds variables per function (short name);
        ``echo`` sees every line a function prints; ``profiles_dir`` adds partner profiles (default:
        ``SEALGATE_PROFILES_DIR``), which get throwaway secrets and reach the functions' environment;
        ``iam_auth`` makes the IAM routes check SigV4 (``on_auth_refusal`` sees why one was refused)."""
        self.built = built
        self.stage = stage
        self.parameters = dict(parameters or {})
        self.extra_environment = {name: dict(env) for name, env in (environment or {}).items()}
        self.pool_size = pool_size
        self.template_path = template_path
        self.profiles_dir = profiles_dir
        self.iam_auth = iam_auth
        self._on_auth_refusal = on_auth_refusal
        self.template = aws_stack.load_template(template_path)
        self.logs = FunctionLogs(echo)
        self.pools: dict[str, WorkerPool] = {}
        self.pollers: list[SqsPoller] = []
        self.routes: list[Route] = []
        self.aws: aws_stack.StackResources | None = None
        self.clients: aws_stack.AwsClients | None = None
        self.emf: EmfToCloudWatch | None = None
        self.started_at = datetime.now(UTC)
        self._sandboxes: Sandboxes | None = None
        self._api: ApiServer | None = None
        self._moto: ThreadedMotoServer | None = None
        self._moto_url = ""
        self._secrets_extension: SecretsExtension | None = None
        self._directory: Path | None = None
        self._lock = threading.Lock()

    # --- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> LocalStack:
        """Start everything (see the module docstring); on failure, stop what had started and raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from moto.server import ThreadedMotoServer

        from sealgate_local.sandboxes import Sandboxes

        if self.built and not (BUILD_DIR / "CryptoLayer" / "python" / "sealgate").is_dir():
            raise FileNotFoundError(f"no SAM build in {BUILD_DIR}: run `make sam-build` first")
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request otherwise
        self.started_at = datetime.now(UTC)
        self._directory = Path(tempfile.mkdtemp(prefix="sealgate-local-"))
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self._moto_url = f"http://{host}:{port}"
        self.clients = _clients(self._moto_url)
        self.aws = aws_stack.build_stack(
            self.clients,
            stage=self.stage,
            parameters=self.parameters,
            template_path=self.template_path,
            profiles_dir=self.profiles_dir,
        )
        secretsmanager = self.clients.secretsmanager
        self._secrets_extension = SecretsExtension(lambda: secretsmanager).start()
        self.emf = EmfToCloudWatch(self.clients.cloudwatch)
        self.logs.emf_sink = self.emf
        self._sandboxes = Sandboxes.start(
            self.aws.profiles, self.aws.secrets, directory=self._directory / "pki"
        )
        names = {f.logical_id: f.name for f in self.aws.functions.values()}
        sources = sqs_sources(self.template, names)
        delivering = {source.function for source in sources}
        for name, function in self.aws.functions.items():
            self.pools[name] = WorkerPool(
                self._spec(function, delivers=name in delivering), self.logs.feed, size=self.pool_size
            )
        with ThreadPoolExecutor(max_workers=len(self.pools)) as executor:
            for started in [executor.submit(pool.start) for pool in self.pools.values()]:
                started.result()
        self.routes = routes_from_template(self.template, names)
        self._api = ApiServer(
            self.routes,
            self.invoke,
            stage=self.stage,
            account_id=self.account_id,
            region=self.aws.region,
            iam_auth=self.iam_auth,
            on_auth_refusal=self._on_auth_refusal,
        ).start()
        for source in sources:
            queue = self.aws.queues[source.queue_logical_id]
            self.pollers.append(
                SqsPoller(
                    self.clients.sqs,
                    queue_url=queue.url,
                    queue_arn=queue.arn,
                    region=self.aws.region,
                    invoke=functools.partial(self.invoke, source.function),
                    batch_size=source.batch_size,
                    report_batch_item_failures=source.report_batch_item_failures,
                ).start()
            )

    def stop(self) -> None:
        """Stop everything that was started; safe to call twice."""
        for poller in self.pollers:
            poller.stop()
        self.pollers = []
        if self._api is not None:
            self._api.stop()
            self._api = None
        for pool in self.pools.values():
            pool.close()
        self.pools = {}
        if self._sandboxes is not None:
            self._sandboxes.stop()
            self._sandboxes = None
        if self._secrets_extension is not None:
            self._secrets_extension.stop()
            self._secrets_extension = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    # --- what callers use -----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/<stage>``: append a route's path (``/v1/encrypt/infosimples``)."""
        if self._api is None:
            raise RuntimeError("the local stack is not running")
        return self._api.base_url

    @property
    def secrets_extension(self) -> SecretsExtension:
        """The Parameters and Secrets Lambda Extension's endpoint the functions fetch their secrets from."""
        if self._secrets_extension is None:
            raise RuntimeError("the local stack is not running")
        return self._secrets_extension

    @property
    def sandboxes(self) -> Sandboxes:
        if self._sandboxes is None:
            raise RuntimeError("the local stack is not running")
        return self._sandboxes

    @property
    def resources(self) -> aws_stack.StackResources:
        """The queues, tables, functions and throwaway secrets made from the template."""
        if self.aws is None:
            raise RuntimeError("the local stack is not running")
        return self.aws

    @property
    def account_id(self) -> str:
        queue = next(iter(self.resources.queues.values()))
        return queue.arn.split(":")[4]

    @property
    def caller_arn(self) -> str:
        """The IAM principal of :attr:`credentials`: the caller the IAM routes' functions see."""
        return self._running_api().caller_arn

    @property
    def credentials(self) -> LocalCredentials:
        """The throwaway access key that signs requests to the IAM routes (made when the stack started)."""
        return self._running_api().credentials

    @property
    def region(self) -> str:
        """The region a signature's credential scope must name."""
        return self.resources.region

    def invoke(self, function: str, event: Mapping[str, Any], request_id: str | None = None) -> Invocation:
        """Invoke ``function`` (short name: ``encrypt``, ``sign``, ``forward``) once, like Lambda's Invoke."""
        return self.pools[function].invoke(event, request_id or str(uuid.uuid4()))

    def origins(self) -> dict[str, list[Origins]]:
        """Where each function's ready workers loaded ``sealgate``, their handler and the harness from."""
        return {name: pool.origins for name, pool in self.pools.items()}

    def loaded_outside(self, root: Path = ROOT) -> list[str]:
        """``function: what: path`` for everything a worker loaded from outside ``root`` (default: this
        checkout); also when a function has no ready worker or one never imported ``sealgate``."""
        found: list[str] = []
        for name, origins in self.origins().items():
            if not origins:
                found.append(f"{name}: no ready worker")
            for origin in origins:
                if origin.sealgate is None:
                    found.append(f"{name}: sealgate: not imported")
                found += [f"{name}: {problem}" for problem in origin.outside(root)]
        return sorted(set(found))

    def queue_depth(self, logical_id: str) -> tuple[int, int]:
        """(visible, in flight) messages of a queue of the template, by logical id."""
        answer = self._running_clients().sqs.get_queue_attributes(
            QueueUrl=self.resources.queue_url(logical_id),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(answer["ApproximateNumberOfMessages"]), int(
            answer["ApproximateNumberOfMessagesNotVisible"]
        )

    def alarms(self) -> list[AlarmState]:
        """The template's alarms as CloudWatch holds them, judged on this run (see :mod:`sealgate_local.alarms`)."""
        cloudwatch = self._running_clients().cloudwatch
        return judge(cloudwatch, self.resources.alarms, service_metric=self._service_metric)

    def metric_totals(self) -> dict[Series, float]:
        """The sum of every metric series in CloudWatch since the stack started (what the functions' EMF made)."""
        return totals(self._running_clients().cloudwatch, start=self.started_at, end=datetime.now(UTC))

    # --- internals ------------------------------------------------------------------------------------------

    def _running_api(self) -> ApiServer:
        if self._api is None:
            raise RuntimeError("the local stack is not running")
        return self._api

    def _running_clients(self) -> aws_stack.AwsClients:
        if self.clients is None:
            raise RuntimeError("the local stack is not running")
        return self.clients

    def _service_metric(self, series: Series) -> float | None:
        """An AWS service metric, from what the local stack observes: moto generates none for Lambda or SQS (only
        S3's), so Lambda's ``Errors`` are the workers' unhandled errors in this run and SQS's
        ``ApproximateNumberOfMessagesVisible`` is the queue's depth now."""
        resources = self.resources
        if series.namespace == "AWS/Lambda" and series.name == "Errors":
            name = series.dimension("FunctionName")
            short = next((s for s, f in resources.functions.items() if f.lambda_name == name), None)
            pool = self.pools.get(short or "")
            return None if pool is None else float(sum(pool.errors.values()))
        if series.namespace == "AWS/SQS" and series.name == "ApproximateNumberOfMessagesVisible":
            name = series.dimension("QueueName")
            logical_id = next((i for i, queue in resources.queues.items() if queue.name == name), None)
            return None if logical_id is None else float(self.queue_depth(logical_id)[0])
        return None

    def _spec(self, function: aws_stack.Function, *, delivers: bool) -> FunctionSpec:
        assert self.aws is not None
        assert self._sandboxes is not None
        assert self._directory is not None
        resource = self.template["Resources"][function.logical_id].get("Properties") or {}
        memory = int(
            resource.get("MemorySize")
            or ((self.template.get("Globals") or {}).get("Function") or {}).get("MemorySize")
            or 128
        )
        lambda_name = function.lambda_name
        environment = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "HOME": str(self._directory),
            "TMPDIR": str(self._directory),  # what a worker leaves behind goes when the stack stops
            # No developer profile or config file: moto's endpoint and the dummy credentials only.
            "AWS_CONFIG_FILE": str(self._directory / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self._directory / "no-aws-credentials"),
            "AWS_REGION": self.aws.region,
            "AWS_DEFAULT_REGION": self.aws.region,
            "AWS_ENDPOINT_URL": self._moto_url,
            **DUMMY_CREDENTIALS,
            "AWS_LAMBDA_FUNCTION_NAME": lambda_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{lambda_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
            "PYTHONDONTWRITEBYTECODE": "1",
            **function.environment,
            "SEALGATE_CA_BUNDLE": self._sandboxes.ca_bundle,
        }
        if self._secrets_extension is not None:  # the Lambda extension's protocol, served in front of moto
            environment.update(self._secrets_extension.environment())
        if delivers:
            for partner, url in self._sandboxes.urls.items():
                environment[f"SEALGATE_BASE_URL_{partner.upper()}"] = url
        environment.update(self.extra_environment.get(function.name, {}))
        code_dir, layer_dir = function.code_dir, LAYER_DIR
        if self.built:
            code_dir = BUILD_DIR / function.logical_id
            layer_dir = BUILD_DIR / "CryptoLayer" / "python"
        return FunctionSpec(
            name=function.name,
            code_dir=code_dir,
            handler=function.handler,
            timeout=float(function.timeout),
            memory=memory,
            environment=environment,
            layer_dir=layer_dir,
            arn=f"arn:aws:lambda:{self.aws.region}:{self.account_id}:function:{lambda_name}",
        )


def _clients(endpoint_url: str) -> aws_stack.AwsClients:
    """boto3 clients on moto's server with the dummy credentials (never the developer's own)."""
    import boto3

    session = boto3.session.Session(
        region_name=REGION,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    return aws_stack.AwsClients.of_session(session, endpoint_url=endpoint_url)
