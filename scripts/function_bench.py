"""``make bench``, second part: the three functions as Lambda runs them, as Markdown tables (scripts/bench.py
prints them after the schemes' tables).

AWS is moto's server on 127.0.0.1, in a process of its own (:class:`MotoProcess`), holding what
``template.yaml`` declares and a throwaway secret per partner (:func:`sealgate_local.aws_stack.build_stack`),
with the Parameters and Secrets Lambda Extension's protocol served in front of it
(:mod:`sealgate_local.secrets_extension`): the functions read their keys as they do where the template attaches
the extension. Every process or in-process import gets its function's environment from the template plus
moto's endpoint, the extension's port and session token, dummy credentials and the region, nothing of the
shell's.

- **Cold start + first answer** (:func:`cold_starts`): each run is a fresh ``python -c`` that imports a handler
  module by path (the functions' ``app.py``: its module scope runs ``Runtime.start``, which loads the profiles
  and fetches the served partners' secrets) and answers one event from ``events/`` read on stdin. One method
  for every row: the parent's wall clock from spawning the process to reading the answer line on its stdout
  (interpreter start, imports, module scope, first answer; the teardown is not counted). Beside each function:
  :mod:`plain_handler` (an encrypt handler written the obvious way) on the same encrypt event, the encrypt
  function again with boto3 fetching its keys (no extension: what the extension buys), the floor (an
  interpreter importing ``cryptography``'s AEAD and encrypting once), the floor plus Powertools' REST resolver,
  Logger and Metrics (what every handler on that resolver pays before any code of its own) and a bare
  interpreter. Median of COLD_RUNS runs, rows interleaved, after one unmeasured run per row (disk cache and
  ``.pyc`` warm). The
  child also reports, from ``time.perf_counter()`` on its first line, how long its imports (with the module
  scope) and its first answer took.
- **Warm path** (:func:`warm_path`): every route of every event in ``events/`` (but the SQS batch) with its
  payload replaced by a 1 KiB one (a ``memo`` filler field), handler imported once in this process; median
  per invocation, beside the layer's own call (protect, reveal, sign, verify) and the bare cipher or signature
  on the same 1 KiB with keys prepared once.
- **SQS batch** (:func:`sqs_batch`): the forward function in this process delivers ten records, then one, to an
  HTTPS partner on 127.0.0.1 that answers after PARTNER_DELAY; messages are enqueued through
  ``POST /v1/forward/{partner}``, so they are in protected form, and received from moto's queue. The AWS calls
  each batch made are counted by operation.
- **Package size** (:func:`package_sizes`): what ``sam build`` left in ``.aws-sam/build``, unzipped.

Every section also leaves its figures in :attr:`Report.figures` (``scripts/bench.py --json``) and each target
missed in :attr:`Report.misses`. Every loop is bounded (runs, calls, seconds) and every server listens on
127.0.0.1 and is stopped at the end.
Moto answers over loopback in a few milliseconds, one request at a time; AWS answers over the network, many
at once: times with AWS calls in them (cold start, forward, webhooks, the SQS batch) are not AWS's.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sealgate.partners import Profile
    from sealgate_local.aws_stack import StackResources
    from sealgate_local.https_server import HttpsServer
    from sealgate_local.secrets_extension import SecretsExtension

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
BUILD_DIR = ROOT / ".aws-sam" / "build"
PLAIN_HANDLER = Path(__file__).resolve().with_name("plain_handler.py")
REGION = "us-east-1"
# Only moto accepts these; they keep a developer's own AWS credentials out of every process started here.
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench-moto", "AWS_SECRET_ACCESS_KEY": "bench-moto"}  # nosec B105 - moto accepts any

COLD_RUNS = int(os.environ.get("BENCH_COLD_RUNS", "7"))
BUDGET = float(os.environ.get("BENCH_SECONDS", "0.4"))
PROCESS_TIMEOUT = 60.0  # seconds one cold-start process may take before it is killed
MAX_CALLS = 200  # warm invocations of one route, at most
BATCH_TRIALS = 3
PAYLOAD_BYTES = 1024
PARTNER_DELAY = 0.05  # seconds the partner sandbox takes to answer a delivery
BATCH_PARTNER = "netcore"

#: the event each function's cold start answers, and what it must answer
COLD_EVENTS = {"encrypt": "encrypt-netcore", "sign": "sign-dlocal", "forward": "forward-enqueue-netcore"}
EXPECTED = {"encrypt": 200, "sign": 200, "forward": 202}
#: the issue's targets, cold start + first answer as a multiple of the plain handler's (a miss: exit status 2)
COLD_TARGETS = {"encrypt": 0.35, "sign": 0.35, "forward": 0.6}
BATCH_TARGET = 1.5
LAYER_TARGET_MIB = 25.0

PLAIN_LABEL = "plain handler (scripts/plain_handler.py)"
NO_PYC = ", layer and handler without .pyc"

MARKER = "@@sealgate-bench-answer@@"  # starts the line a child prints when it has answered

#: a fresh process answering one event: argv[1] the handler module's path, argv[2] the context as JSON, the
#: event on stdin; prints MARKER and {"status", "import_s", "answer_s"} as soon as the handler returned
HANDLER_CHILD = f"""\
import time
started = time.perf_counter()
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("bench_handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
imported = time.perf_counter()
class Context:
    def __init__(self, values):
        self.__dict__.update(values)
    def get_remaining_time_in_millis(self):
        return self.remaining_ms
answer = module.lambda_handler(json.load(sys.stdin), Context(json.loads(sys.argv[2])))
answered = time.perf_counter()
status = answer.get("statusCode")
print({MARKER!r}, json.dumps(dict(status=status, import_s=imported - started, answer_s=answered - imported)), flush=True)
"""

#: the floor: import the AEAD module and encrypt stdin once with AES-256-GCM
FLOOR_CHILD = f"""\
import time
started = time.perf_counter()
import os, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
imported = time.perf_counter()
AESGCM(os.urandom(32)).encrypt(os.urandom(12), sys.stdin.buffer.read(), None)
answered = time.perf_counter()
import json
print({MARKER!r}, json.dumps(dict(status=200, import_s=imported - started, answer_s=answered - imported)), flush=True)
"""

#: the floor of any handler on Powertools' REST resolver: the floor above plus importing the resolver (its
#: package also brings Logger and Metrics), which every Sealgate function must do
POWERTOOLS_FLOOR_CHILD = FLOOR_CHILD.replace(
    "from cryptography.hazmat.primitives.ciphers.aead import AESGCM\n",
    "from cryptography.hazmat.primitives.ciphers.aead import AESGCM\n"
    "from aws_lambda_powertools.event_handler import APIGatewayRestResolver\n"
    "from aws_lambda_powertools import Logger, Metrics\n",
)

#: a bare interpreter: only the answer line
INTERPRETER_CHILD = f"print({MARKER!r}, '{{\"status\": 200}}', flush=True)\n"


class MeasurementError(RuntimeError):
    """A measurement could not be made (a process gave no answer, a route answered the wrong status...)."""


# --- shared: events, environments, tables -----------------------------------------------------------------


def load_event(name: str) -> dict[str, Any]:
    """``events/<name>.json`` with a fresh API Gateway request id."""
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    if "requestContext" in event:
        event["requestContext"]["requestId"] = str(uuid.uuid4())
    return event


def with_body(event: Mapping[str, Any], body: Any) -> dict[str, Any]:
    """A copy of ``event`` with ``body`` as its body (compact JSON unless already text) and a fresh request id."""
    copied = copy.deepcopy(dict(event))
    copied["body"] = body if isinstance(body, str) else compact(body)
    copied["requestContext"]["requestId"] = str(uuid.uuid4())
    return copied


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def padded(payload: Any, size: int = PAYLOAD_BYTES) -> Any:
    """``payload`` with a ``memo`` filler field making its compact JSON ``size`` bytes (in the first object of a
    list); unchanged when it is already that long or holds no object."""
    result = copy.deepcopy(payload)
    holder = result[0] if isinstance(result, list) and result else result
    if not isinstance(holder, dict):
        return result
    holder["memo"] = ""
    holder["memo"] = "x" * max(0, size - len(compact(result)))
    return result


def fresh_key() -> str:
    return f"bench-{uuid.uuid4()}"


def lambda_environment(
    function_environment: Mapping[str, str], *, endpoint: str, home: Path, lambda_name: str, memory: int
) -> dict[str, str]:
    """What a function's process sees: the template's variables for it, moto's endpoint, dummy credentials,
    the region and Lambda's own variables; nothing of the shell's but ``PATH``."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "HOME": str(home),
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        **DUMMY_CREDENTIALS,
        "AWS_LAMBDA_FUNCTION_NAME": lambda_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{lambda_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        **function_environment,
    }


def context_values(lambda_name: str, memory: int, timeout: float) -> dict[str, Any]:
    """The attributes of the fake Lambda context (the remaining time stays at the function's timeout)."""
    return {
        "function_name": lambda_name,
        "function_version": "$LATEST",
        "memory_limit_in_mb": memory,
        "invoked_function_arn": f"arn:aws:lambda:{REGION}:123456789012:function:{lambda_name}",
        "aws_request_id": str(uuid.uuid4()),
        "log_group_name": f"/aws/lambda/{lambda_name}",
        "log_stream_name": "bench",
        "remaining_ms": int(timeout * 1000),
    }


class FakeContext:
    """A Lambda context for in-process invocations (see :func:`context_values`)."""

    remaining_ms: int

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[int] = ()
) -> str:
    """A Markdown table; columns whose index is in ``right`` are right-aligned."""
    rule = ["---:" if index in right else "---" for index in range(len(headers))]
    cells = [[str(cell) for cell in row] for row in rows]
    return "\n".join(
        ["| " + " | ".join(headers) + " |", "|" + "|".join(rule) + "|"]
        + ["| " + " | ".join(row) + " |" for row in cells]
    )


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    value = seconds * 1000
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def us(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1e6:,.0f}"


def ratio(value: float | None, of: float | None) -> str:
    return "—" if value is None or not of else f"{value / of:.2f}x"


def verdict(value: float | None, target: float | None) -> str:
    if value is None or target is None:
        return "—"
    return f"<= {target:g}x: {'meets' if value <= target else 'MISSES'}"


def machine() -> str:
    """One line naming the machine: CPUs, platform, Python."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{os.cpu_count()} CPUs ({usable} usable), {platform.system()} {platform.machine()}, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )


# --- local AWS ------------------------------------------------------------------------------------------------


class MotoProcess:
    """moto's server in a process of its own on a free port of 127.0.0.1 (stopped by :meth:`stop`).

    Not in this process: the functions measured in-process (warm path, SQS batch) would otherwise share this
    interpreter's lock with moto's request handling, so the simulated AWS's CPU would count as theirs. On
    Lambda, DynamoDB and SQS do their work elsewhere."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start it; its endpoint URL once it answers."""
        import socket
        import urllib.request

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        endpoint = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                # the http://127.0.0.1 endpoint of the moto server this script started, never a file: URL
                with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=2):  # nosec B310
                    return endpoint
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise MeasurementError("moto's server did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


@dataclass
class LocalAws:
    """moto's server (a process of its own, :class:`MotoProcess`) with the template's resources and throwaway
    secrets, and the Parameters and Secrets Lambda Extension's protocol in front of it; a context manager."""

    endpoint: str = ""
    stack: StackResources | None = None
    memory: int = 128
    home: Path | None = None
    _server: MotoProcess | None = None
    extension: SecretsExtension | None = None

    def __enter__(self) -> LocalAws:
        import boto3

        from sealgate_local import aws_stack
        from sealgate_local.secrets_extension import SecretsExtension

        self.home = Path(tempfile.mkdtemp(prefix="sealgate-bench-"))
        self._server = MotoProcess()
        try:
            self.endpoint = self._server.start()
            session = boto3.session.Session(
                region_name=REGION,
                aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            )
            clients = aws_stack.AwsClients.of_session(session, endpoint_url=self.endpoint)
            self.stack = aws_stack.build_stack(clients)
            self.extension = SecretsExtension(lambda: clients.secretsmanager).start()
            globals_ = aws_stack.load_template().get("Globals") or {}
            self.memory = int((globals_.get("Function") or {}).get("MemorySize") or 128)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.extension is not None:
            self.extension.stop()
            self.extension = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None

    @property
    def resources(self) -> StackResources:
        if self.stack is None:
            raise RuntimeError("local AWS is not running")
        return self.stack

    def lambda_name(self, function: str) -> str:
        return self.resources.functions[function].lambda_name

    def environment(self, function: str, **extra: str) -> dict[str, str]:
        """The environment of ``function`` (short name) with local AWS, plus ``extra``."""
        assert self.home is not None
        extension = self.extension.environment() if self.extension is not None else {}
        return lambda_environment(
            {**self.resources.environment(function), **extension, **extra},
            endpoint=self.endpoint,
            home=self.home,
            lambda_name=self.lambda_name(function),
            memory=self.memory,
        )

    def context(self, function: str) -> dict[str, Any]:
        timeout = float(self.resources.functions[function].timeout)
        return context_values(self.lambda_name(function), self.memory, timeout)


# --- cold start -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColdTarget:
    """One row: a ``python -c`` process, what it gets on stdin and must answer."""

    label: str
    event: str  # what it answers, for the table
    command: list[str]
    environment: dict[str, str]
    stdin: bytes
    cwd: Path
    expected: int = 200
    target: float | None = None  # the target, x the plain handler
    handler: Path | None = None  # the module it imports by path, if any
    baseline: str = ""  # the label of the row it is compared with (default: the plain handler's)


@dataclass(frozen=True)
class ColdRun:
    seconds: float  # spawn -> answer line, in the parent
    import_s: float | None  # in the child: imports and module scope
    answer_s: float | None  # in the child: the first invocation


def handler_command(path: Path, context: Mapping[str, Any]) -> list[str]:
    """``python -c HANDLER_CHILD <handler path> <context JSON>``."""
    return [sys.executable, "-c", HANDLER_CHILD, str(path), json.dumps(dict(context))]


def cold_targets(aws: LocalAws) -> list[ColdTarget]:
    """The three functions on their COLD_EVENTS, the plain handler, the floor and a bare interpreter."""
    targets = []
    for function, event_name in COLD_EVENTS.items():
        event = load_event(event_name)
        body = json.loads(event["body"])
        if "idempotency_key" in body:  # each run a new request, not a duplicate answered from the table
            event = with_body(event, {**body, "idempotency_key": "@fresh@"})
        targets.append(
            ColdTarget(
                label=f"{function} function",
                event=f"`{event_name}`",
                command=handler_command(ROOT / "functions" / function / "app.py", aws.context(function)),
                handler=ROOT / "functions" / function / "app.py",
                environment=aws.environment(function),
                stdin=json.dumps(event).encode(),
                cwd=ROOT / "functions" / function,
                expected=EXPECTED[function],
                target=COLD_TARGETS[function],
            )
        )
    encrypt = targets[0]
    without_extension = {
        name: value
        for name, value in encrypt.environment.items()
        if name != "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"
    }
    targets.append(  # what the extension buys: the same cold start with boto3 fetching the secrets
        dataclasses.replace(
            encrypt,
            label="encrypt function, secrets through boto3 (no extension layer)",
            environment=without_extension,
            target=None,
            handler=None,
        )
    )
    plain_event = load_event(COLD_EVENTS["encrypt"])
    plain_env = aws.environment("encrypt", PLAIN_PARTNER=plain_event["pathParameters"]["partner"])
    payload = compact(json.loads(plain_event["body"])["payload"]).encode()
    targets += [
        ColdTarget(
            label=PLAIN_LABEL,
            event=f"`{COLD_EVENTS['encrypt']}`",
            command=handler_command(PLAIN_HANDLER, aws.context("encrypt")),
            handler=PLAIN_HANDLER,
            environment=plain_env,
            stdin=json.dumps(plain_event).encode(),
            cwd=PLAIN_HANDLER.parent,
        ),
        ColdTarget(
            label="floor: import `cryptography` AEAD, AES-GCM once",
            event="its payload",
            command=[sys.executable, "-c", FLOOR_CHILD],
            environment=plain_env,
            stdin=payload,
            cwd=PLAIN_HANDLER.parent,
        ),
        ColdTarget(
            label="floor + Powertools' `APIGatewayRestResolver`, Logger, Metrics imported",
            event="its payload",
            command=[sys.executable, "-c", POWERTOOLS_FLOOR_CHILD],
            environment=plain_env,
            stdin=payload,
            cwd=PLAIN_HANDLER.parent,
        ),
        ColdTarget(
            label="bare interpreter (`python -c` printing the answer line)",
            event="—",
            command=[sys.executable, "-c", INTERPRETER_CHILD],
            environment=plain_env,
            stdin=b"",
            cwd=PLAIN_HANDLER.parent,
        ),
    ]
    return targets


def layer_sources(build: Path = BUILD_DIR) -> list[Path]:
    """Where this interpreter imports each top-level package (or module) of the built layer from."""
    found = []
    for entry in sorted((build / "CryptoLayer" / "python").iterdir()):
        name = entry.name.removesuffix(".py")
        if "." in name or not (entry.is_dir() or entry.suffix == ".py"):
            continue  # dist-info, data, shared objects, requirements.txt
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin is not None:
            origin = Path(spec.origin)  # unresolved, as the child's __file__ (the cache prefix mirrors it)
            found.append(origin.parent if spec.submodule_search_locations else origin)
    return found


def without_layer_bytecode(
    targets: Sequence[ColdTarget], cache: Path, build: Path = BUILD_DIR
) -> list[ColdTarget]:
    """The handler ``targets`` with the layer's packages and the handler compiled from source at every start, as
    on Lambda: ``sam build`` ships them without ``.pyc``, and /opt and /var/task are read-only. Everything
    else (the standard library, boto3: the runtime's own, precompiled) reads its bytecode from ``cache``
    (``PYTHONPYCACHEPREFIX``), filled by one run of each target here. Empty without a build to say what the
    layer holds."""
    if not (build / "CryptoLayer" / "python").is_dir():
        return []
    handlers = [target for target in targets if target.handler is not None]
    for target in handlers:  # fills the cache
        spawn(
            dataclasses.replace(target, environment={**target.environment, "PYTHONPYCACHEPREFIX": str(cache)})
        )
    for source in [*layer_sources(build), *(target.handler for target in handlers if target.handler)]:
        mirrored = cache / source.relative_to(source.anchor)
        if source.is_dir():
            shutil.rmtree(mirrored, ignore_errors=True)
        elif mirrored.parent.is_dir():
            for compiled in mirrored.parent.glob(f"{source.stem}.*.pyc"):
                compiled.unlink()
    environment = {"PYTHONPYCACHEPREFIX": str(cache), "PYTHONDONTWRITEBYTECODE": "1"}
    return [
        dataclasses.replace(
            target,
            label=f"{target.label}{NO_PYC}",
            environment={**target.environment, **environment},
            baseline=f"{PLAIN_LABEL}{NO_PYC}",
        )
        for target in handlers
    ]


def spawn(target: ColdTarget, timeout: float = PROCESS_TIMEOUT) -> ColdRun:
    """One run of ``target``: seconds from spawning it to reading its answer line (see the module docstring).

    A fresh idempotency key replaces ``@fresh@`` in what it reads.
    """
    stdin = target.stdin.replace(b"@fresh@", fresh_key().encode())
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            target.command,
            env=target.environment,
            cwd=target.cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        watchdog = threading.Timer(timeout, process.kill)
        watchdog.start()
        answer = b""
        try:
            assert process.stdin is not None
            assert process.stdout is not None
            with contextlib.suppress(OSError):  # a child that died before reading: reported below
                process.stdin.write(stdin)
            with contextlib.suppress(OSError):
                process.stdin.close()
            for line in process.stdout:
                if line.startswith(MARKER.encode()):
                    answer = line
                    break
            elapsed = time.perf_counter() - started
            process.stdout.read()
            returncode = process.wait()
        finally:
            watchdog.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()
        if not answer:
            errors.seek(0)
            last = errors.read().decode("utf-8", "replace").strip().splitlines()[-1:] or ["(nothing)"]
            raise MeasurementError(
                f"{target.label}: no answer (exit status {returncode}); stderr ends {last[0]!r}"
            )
    found = json.loads(answer[len(MARKER) :])
    if found.get("status") != target.expected:
        raise MeasurementError(f"{target.label}: answered {found.get('status')}, not {target.expected}")
    return ColdRun(elapsed, found.get("import_s"), found.get("answer_s"))


def cold_starts(targets: Sequence[ColdTarget], runs: int = COLD_RUNS) -> dict[str, list[ColdRun]]:
    """``runs`` measured runs of each target, interleaved, after one unmeasured run of each."""
    for target in targets:
        spawn(target)
    found: dict[str, list[ColdRun]] = {target.label: [] for target in targets}
    for _ in range(runs):
        for target in targets:
            found[target.label].append(spawn(target))
    return found


def cold_figures(
    targets: Sequence[ColdTarget], runs: Mapping[str, Sequence[ColdRun]]
) -> list[dict[str, Any]]:
    """One entry per target: medians (seconds), range, ratio to its baseline and the target, if any."""

    def median(label: str, pick: Callable[[ColdRun], float | None]) -> float | None:
        values = [value for value in map(pick, runs.get(label, ())) if value is not None]
        return statistics.median(values) if values else None

    found = []
    for target in targets:
        total = median(target.label, lambda run: run.seconds)
        baseline = median(target.baseline or PLAIN_LABEL, lambda run: run.seconds)
        seconds = [run.seconds for run in runs[target.label]]
        found.append(
            {
                "label": target.label,
                "event": target.event,
                "runs": len(seconds),
                "median_s": total,
                "min_s": min(seconds),
                "max_s": max(seconds),
                "import_s": median(target.label, lambda run: run.import_s),
                "answer_s": median(target.label, lambda run: run.answer_s),
                "baseline": target.baseline or PLAIN_LABEL,
                "ratio": None if total is None or not baseline else total / baseline,
                "target": target.target,
            }
        )
    return found


def cold_misses(figures: Sequence[Mapping[str, Any]]) -> list[str]:
    """The rows whose ratio misses the issue's target."""
    return [
        f"cold start: {row['label']} at {row['ratio']:.2f}x the plain handler (target <= {row['target']:g}x)"
        for row in figures
        if row["target"] is not None and row["ratio"] is not None and row["ratio"] > row["target"]
    ]


def cold_table(targets: Sequence[ColdTarget], runs: Mapping[str, Sequence[ColdRun]]) -> str:
    rows = []
    for row in cold_figures(targets, runs):
        rows.append(
            [
                row["label"],
                row["event"],
                ms(row["median_s"]),
                f"{ms(row['min_s'])} - {ms(row['max_s'])}",
                ms(row["import_s"]),
                ms(row["answer_s"]),
                "—" if row["ratio"] is None else f"{row['ratio']:.2f}x",
                verdict(row["ratio"], row["target"]),
            ]
        )
    headers = [
        f"fresh process answering one event (median of {max(map(len, runs.values()), default=0)})",
        "event",
        "spawn → answer, ms",
        "min - max",
        "in the child: imports + module scope, ms",
        "first answer, ms",
        "x plain handler",
        "target",
    ]
    return markdown_table(headers, rows, right=(2, 3, 4, 5, 6))


def importtime_top(report: str, top: int = 10) -> list[tuple[str, int]]:
    """The ``top`` modules of a ``python -X importtime`` report by cumulative microseconds, largest first."""
    found = []
    for line in report.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue  # the header line, or anything else on stderr
        found.append((parts[2].strip(), int(parts[1])))
    return sorted(found, key=lambda entry: -entry[1])[:top]


def import_profile(target: ColdTarget, top: int = 10) -> list[tuple[str, int]]:
    """One run of ``target`` under ``python -X importtime``: its ``top`` imports by cumulative time."""
    command = [target.command[0], "-X", "importtime", *target.command[1:]]
    done = subprocess.run(
        command,
        env=target.environment,
        cwd=target.cwd,
        input=target.stdin.replace(b"@fresh@", fresh_key().encode()),
        capture_output=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )
    if MARKER.encode() not in done.stdout:
        raise MeasurementError(
            f"{target.label}: no answer under -X importtime (exit status {done.returncode})"
        )
    return importtime_top(done.stderr.decode("utf-8", "replace"), top)


def import_table(profiles: Mapping[str, Sequence[tuple[str, int]]]) -> str:
    """One column per process: its largest imports by cumulative time (nested modules count in their parents)."""
    depth = max((len(found) for found in profiles.values()), default=0)
    rows = [
        [
            str(rank + 1),
            *(
                f"`{found[rank][0]}` {found[rank][1] / 1000:,.0f}" if rank < len(found) else ""
                for found in profiles.values()
            ),
        ]
        for rank in range(depth)
    ]
    headers = ["largest imports at cold start, cumulative ms (`-X importtime`, one run)", *profiles]
    return markdown_table(headers, rows)


# --- in-process invocations -----------------------------------------------------------------------------------


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """This process's environment replaced by ``values`` (a function's), restored afterwards."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """What handlers print (JSON logs, EMF lines) goes to /dev/null; Powertools' warnings are ignored."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def import_handler(path: Path) -> ModuleType:
    """``path`` imported afresh under a unique name: its module scope (the cold start) runs now, in this
    process's environment; the layer's cached boto3 clients are dropped first."""
    from sealgate import aws_clients

    aws_clients.reset()
    spec = importlib.util.spec_from_file_location(f"sealgate_bench_{uuid.uuid4().hex}", path)
    if spec is None or spec.loader is None:
        raise MeasurementError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Function:
    """A handler imported in this process, with the environment and context it was started with."""

    name: str
    module: ModuleType
    environment: dict[str, str]
    context: dict[str, Any]

    def invoke(self, event: Mapping[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self.module.lambda_handler(event, FakeContext(self.context))
        return answer

    def call(self, event: Mapping[str, Any], expected: int) -> dict[str, Any]:
        """Invoke with an API Gateway event; the parsed body, after checking the status."""
        answer = self.invoke(event)
        if answer.get("statusCode") != expected:
            code = (json.loads(answer.get("body") or "{}") or {}).get("code")
            raise MeasurementError(
                f"{self.name}: {event.get('path')} answered {answer.get('statusCode')} ({code}), not {expected}"
            )
        body: dict[str, Any] = json.loads(answer.get("body") or "{}")
        return body


# --- warm path --------------------------------------------------------------------------------------------------


@dataclass
class WarmRow:
    route: str
    partner: str
    scheme: str
    route_s: float
    layer_s: float | None
    bare_s: float | None
    note: str = ""


def per_call(call: Callable[[int], object], limit: int = MAX_CALLS) -> float:
    """Median seconds of ``call(i)`` over about BUDGET seconds: two unmeasured calls, then at least three and at
    most ``limit`` in all (``i`` counts every call, so prepared inputs can be used once each)."""
    call(0)
    call(1)
    times: list[float] = []
    spent = 0.0
    index = 2
    while index < limit and (spent < BUDGET or len(times) < 3):
        started = time.perf_counter()
        call(index)
        elapsed = time.perf_counter() - started
        times.append(elapsed)
        spent += elapsed
        index += 1
    return statistics.median(times)


def _timed_events(function: Function, events: Sequence[Mapping[str, Any]], expected: int) -> float:
    def call(index: int) -> None:
        answer = function.invoke(events[index])
        if answer.get("statusCode") != expected:
            raise MeasurementError(
                f"{function.name}: {events[index].get('path')} answered {answer.get('statusCode')}"
            )

    return per_call(call, len(events))


def _bare_cipher(profile: Profile, secret: Mapping[str, str], plaintext: bytes) -> tuple[float, float | None]:
    """Seconds of the profile's cipher on ``plaintext`` with keys prepared once: encrypt, decrypt (None for a
    public-key scheme)."""
    protection = profile.protection
    cipher, options = protection.cipher, protection.cipher_options
    sealing = protection.keys(secret, decrypting=False)
    token = cipher.encrypt(plaintext, sealing, options)
    encrypt = per_call(lambda _: cipher.encrypt(plaintext, sealing, options))
    if not protection.symmetric:
        return encrypt, None
    opening = protection.keys(secret, decrypting=True)
    return encrypt, per_call(lambda _: cipher.decrypt(token, opening, options))


def _bare_signature(scheme: str, body: bytes) -> tuple[float, float] | None:
    """Seconds to sign and to check ``body`` with signer ``scheme``'s own signature (keygen'd secret), or None
    when it signs only through a profile (stored headers: nothing to compute)."""
    from sealgate import schemes

    signer = schemes.lookup("signer", scheme)
    if not signer.signature_fields:
        return None
    secret = next(iter(signer.keygen().values())).encode()
    fields = {name: f"bench-{name}" for name, _ in signer.signature_fields}
    presented = signer.signature(secret, fields, body)
    return (
        per_call(lambda _: signer.signature(secret, fields, body)),
        per_call(lambda _: signer.check(secret, fields, body, presented)),
    )


def _encrypt_rows(
    encrypt: Function, partner: str, profile: Profile, secret: Mapping[str, str]
) -> list[WarmRow]:
    """``POST /v1/encrypt/{partner}``, and ``POST /v1/decrypt/{partner}`` on its answer (symmetric schemes)."""
    protection = profile.protection
    base = load_event(f"encrypt-{partner}")
    payload = padded(json.loads(base["body"])["payload"])
    bare_encrypt, bare_decrypt = _bare_cipher(profile, secret, compact(payload).encode())
    event = with_body(base, {"payload": payload})
    rows = []
    with environment(encrypt.environment):
        protected = encrypt.call(event, 200)["payload"]
        rows.append(
            WarmRow(
                "POST /v1/encrypt/{partner}",
                partner,
                protection.scheme,
                _timed_events(encrypt, [copy.deepcopy(event) for _ in range(MAX_CALLS)], 200),
                per_call(lambda _: protection.protect(payload, secret)),
                bare_encrypt,
            )
        )
        if protection.symmetric:
            event = with_body(load_event(f"decrypt-{partner}"), {"payload": protected})
            rows.append(
                WarmRow(
                    "POST /v1/decrypt/{partner}",
                    partner,
                    protection.scheme,
                    _timed_events(encrypt, [copy.deepcopy(event) for _ in range(MAX_CALLS)], 200),
                    per_call(lambda _: protection.reveal(protected, secret)),
                    bare_decrypt,
                )
            )
    return rows


def _enqueue_row(forward: Function, partner: str, profile: Profile, secret: Mapping[str, str]) -> WarmRow:
    """``POST /v1/forward/{partner}``: a new idempotency key each time (a repeated one is answered from the table)."""
    protection = profile.protection
    base = load_event(f"forward-enqueue-{partner}")
    body = json.loads(base["body"])
    payload = padded(body["payload"])
    events = [
        with_body(base, {**body, "payload": payload, "idempotency_key": fresh_key()})
        for _ in range(MAX_CALLS)
    ]
    bare_encrypt, _ = _bare_cipher(profile, secret, compact(payload).encode())
    with environment(forward.environment):
        route = _timed_events(forward, events, 202)
    return WarmRow(
        "POST /v1/forward/{partner}",
        partner,
        protection.scheme,
        route,
        per_call(lambda _: protection.protect(payload, secret)),
        bare_encrypt,
        "protect, then SQS + DynamoDB (moto)",
    )


def _sign_row(sign: Function, partner: str, profile: Profile, secret: Mapping[str, str]) -> WarmRow | None:
    """``POST /v1/sign/{partner}`` on a 1 KiB body; None for a partner without signing or event."""
    signing = profile.signing
    if signing is None or not (EVENTS / f"sign-{partner}.json").is_file():
        return None
    base = load_event(f"sign-{partner}")
    document = json.loads(base["body"])
    body = compact(padded(json.loads(document["body"])))
    event = with_body(base, {**document, "body": body})
    bare = _bare_signature(signing.signer.name, body.encode())
    with environment(sign.environment):
        route = _timed_events(sign, [copy.deepcopy(event) for _ in range(MAX_CALLS)], 200)
    return WarmRow(
        "POST /v1/sign/{partner}",
        partner,
        signing.signer.name,
        route,
        per_call(lambda _: signing.sign(secret, body.encode())),
        None if bare is None else bare[0],
        "" if bare is not None else "stored headers only: no signature to compute",
    )


def _webhook_row(sign: Function, partner: str, profile: Profile, aws: LocalAws) -> WarmRow | None:
    """``POST /v1/webhooks/{partner}``: 1 KiB notifications, each new (its identifying field) and signed now by
    the partner's side of the local sandboxes (:mod:`sealgate_local.sandbox_oracles`)."""
    from sealgate_local.sandbox_oracles import ORACLES, PartnerKeys, ProfileTerms

    webhook = profile.webhook
    if webhook is None or not (EVENTS / f"webhook-{partner}.json").is_file():
        return None
    thrown = aws.resources.secrets[partner]
    notifier = ORACLES["webhook"][webhook.verifier.name](
        ProfileTerms.of(profile), PartnerKeys(partner, thrown.value, thrown.partner_side)
    )
    base = load_event(f"webhook-{partner}")
    example = json.loads(base["body"])
    identifying = [name for name in getattr(webhook.options, "dedupe_fields", ()) if name in example]
    events = []
    for _ in range(MAX_CALLS):
        fresh = {identifying[0]: f"bench-{uuid.uuid4().hex}"} if identifying else {}
        text = compact(padded({**example, **fresh}))
        event = with_body(base, text)
        event["headers"] = {**event["headers"], **notifier.headers(text.encode())}
        event["multiValueHeaders"] = {name: [value] for name, value in event["headers"].items()}
        events.append(event)
    body = events[0]["body"].encode()
    headers = {name.lower(): value for name, value in events[0]["headers"].items()}
    bare = _bare_signature(webhook.verifier.name, body)
    with environment(sign.environment):
        route = _timed_events(sign, events, 200)
    return WarmRow(
        "POST /v1/webhooks/{partner}",
        partner,
        webhook.verifier.name,
        route,
        per_call(lambda _: webhook.verify(thrown.value, headers, body)),
        None if bare is None else bare[1],
        "verify, then DynamoDB + SQS (moto)",
    )


def _status_row(forward: Function) -> WarmRow:
    """``GET /v1/forward/{id}`` of a message just queued."""
    base = load_event(f"forward-enqueue-{BATCH_PARTNER}")
    event = load_event("forward-status")
    with environment(forward.environment):
        queued = forward.call(
            with_body(base, {**json.loads(base["body"]), "idempotency_key": fresh_key()}), 202
        )
        old = event["pathParameters"]["target"]
        event["pathParameters"]["target"] = queued["id"]
        for holder in (event, event["requestContext"]):
            holder["path"] = holder["path"].replace(old, queued["id"])
        route = _timed_events(forward, [copy.deepcopy(event) for _ in range(MAX_CALLS)], 200)
    return WarmRow("GET /v1/forward/{id}", BATCH_PARTNER, "—", route, None, None, "DynamoDB read (moto)")


def warm_path(functions: Mapping[str, Function], aws: LocalAws) -> list[WarmRow]:
    """One row per route and partner of ``events/`` (see the module docstring)."""
    rows: list[WarmRow] = []
    for partner, profile in sorted(aws.resources.profiles.items()):
        secret = aws.resources.secrets[partner].value
        rows += _encrypt_rows(functions["encrypt"], partner, profile, secret)
        rows.append(_enqueue_row(functions["forward"], partner, profile, secret))
        signed = _sign_row(functions["sign"], partner, profile, secret)
        notified = _webhook_row(functions["sign"], partner, profile, aws)
        rows += [row for row in (signed, notified) if row is not None]
    rows.append(_status_row(functions["forward"]))
    return rows


def warm_table(rows: Sequence[WarmRow]) -> str:
    body = [
        [
            row.route,
            row.partner,
            row.scheme,
            us(row.route_s),
            us(row.layer_s),
            us(row.bare_s),
            ratio(row.route_s, row.bare_s),
            row.note,
        ]
        for row in rows
    ]
    headers = [
        f"warm route, {PAYLOAD_BYTES} B payload (median per invocation)",
        "partner",
        "scheme",
        "route, µs",
        "layer call (protect / reveal / sign / verify), µs",
        "bare cipher or signature, keys prepared once, µs",
        "route ÷ bare",
        "note",
    ]
    return markdown_table(headers, body, right=(3, 4, 5, 6))


# --- SQS batch ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchResult:
    one_s: float
    ten_s: float
    delay: float = PARTNER_DELAY
    calls_one: Mapping[str, int] = field(default_factory=dict)  # AWS API calls of one batch, by operation
    calls_ten: Mapping[str, int] = field(default_factory=dict)


@contextlib.contextmanager
def counting_aws_calls() -> Iterator[dict[str, int]]:
    """Every botocore API call made in this process while inside, by operation name (all threads)."""
    from botocore.client import BaseClient

    counts: dict[str, int] = {}
    lock = threading.Lock()
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def counting(self: Any, operation: str, params: Any) -> Any:
        with lock:
            counts[operation] = counts.get(operation, 0) + 1
        return original(self, operation, params)

    BaseClient._make_api_call = counting  # type: ignore[attr-defined]
    try:
        yield counts
    finally:
        BaseClient._make_api_call = original  # type: ignore[attr-defined]


def slow_partner(delay: float = PARTNER_DELAY) -> HttpsServer:
    """An HTTPS partner on 127.0.0.1 (throwaway CA) that answers every request 200 after ``delay`` seconds."""
    from sealgate_local.https_server import HttpsServer, Request, Response

    def answer(request: Request) -> Response:
        time.sleep(delay)
        return Response(200, {"Content-Type": "application/json"}, b'{"status":"ok"}')

    return HttpsServer(answer)


def partner_overrides(server: HttpsServer, partners: Sequence[str]) -> dict[str, str]:
    """The forward function's local overrides: trust the server's CA, send every partner to it."""
    assert server.ca_bundle is not None
    return {
        "SEALGATE_CA_BUNDLE": server.ca_bundle,
        **{f"SEALGATE_BASE_URL_{partner.upper()}": server.url for partner in partners},
    }


def sqs_event(aws: LocalAws, messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Lambda's SQS event for ``messages`` received from the outbound queue (as the local stack's poller makes it)."""
    from sealgate_local.sqs_poller import lambda_record

    arn = aws.resources.queues["OutboundQueue"].arn
    return {"Records": [lambda_record(message, queue_arn=arn, region=REGION) for message in messages]}


def _receive(aws: LocalAws, wanted: int) -> list[dict[str, Any]]:
    """Up to ``wanted`` messages now visible in the outbound queue (a few receives at most)."""
    clients = aws.resources.clients
    assert clients is not None
    sqs = clients.sqs
    got: list[dict[str, Any]] = []
    for _ in range(5):
        answer = sqs.receive_message(
            QueueUrl=aws.resources.queue_url("OutboundQueue"),
            MaxNumberOfMessages=min(10, wanted - len(got)),
            AttributeNames=["All"],
        )
        got.extend(dict(message) for message in answer.get("Messages", []))
        if len(got) >= wanted or not answer.get("Messages"):
            break
    return got


def sqs_batch(
    forward: Function, aws: LocalAws, server: HttpsServer, trials: int = BATCH_TRIALS
) -> BatchResult:
    """Median seconds of the forward function delivering one record and ten (see the module docstring)."""
    clients = aws.resources.clients
    assert clients is not None
    queue_url = aws.resources.queue_url("OutboundQueue")
    base = load_event(f"forward-enqueue-{BATCH_PARTNER}")
    body = json.loads(base["body"])
    timings: dict[int, list[float]] = {1: [], 10: []}
    calls: dict[int, dict[str, int]] = {1: {}, 10: {}}
    with environment(forward.environment):
        clients.sqs.purge_queue(QueueUrl=queue_url)  # what the warm path queued
        for _ in range(trials):
            for size, times in timings.items():
                for _ in range(size):
                    forward.call(with_body(base, {**body, "idempotency_key": fresh_key()}), 202)
                messages = _receive(aws, size)
                if len(messages) != size:
                    raise MeasurementError(f"sqs batch: {len(messages)} messages received, not {size}")
                before = len(server.requests)
                event = sqs_event(aws, messages)
                with counting_aws_calls() as counted:
                    started = time.perf_counter()
                    answer = forward.invoke(event)
                    times.append(time.perf_counter() - started)
                calls[size] = dict(counted)
                if answer.get("batchItemFailures") or len(server.requests) - before != size:
                    raise MeasurementError(
                        f"sqs batch of {size}: {len(answer.get('batchItemFailures') or [])} failed, "
                        f"{len(server.requests) - before} delivered"
                    )
                clients.sqs.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=[
                        {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                        for index, message in enumerate(messages)
                    ],
                )
    return BatchResult(
        statistics.median(timings[1]), statistics.median(timings[10]), calls_one=calls[1], calls_ten=calls[10]
    )


def batch_table(result: BatchResult) -> str:
    relative = result.ten_s / result.one_s
    rows = [
        ["one record", ms(result.one_s), ms(result.one_s), calls_text(result.calls_one)],
        ["ten records", ms(result.ten_s), ms(result.ten_s / 10), calls_text(result.calls_ten)],
        ["ten ÷ one", f"{relative:.2f}x", verdict(relative, BATCH_TARGET), ""],
    ]
    headers = [
        f"SQS batch to a partner answering after {result.delay * 1000:.0f} ms ({BATCH_PARTNER}, median of "
        f"{BATCH_TRIALS})",
        "wall time, ms",
        "per record, ms",
        "AWS calls in the batch (moto, a process of its own)",
    ]
    return markdown_table(headers, rows, right=(1, 2))


def calls_text(calls: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {number}" for name, number in sorted(calls.items())) or "—"


# --- package size -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Artifact:
    name: str
    size: int  # bytes, unzipped (apparent size of every file)
    files: int
    compiled: int  # .pyc files among them
    largest: tuple[tuple[str, int], ...] = ()  # (top-level entry, bytes), largest first


def tree_size(path: Path) -> tuple[int, int, int]:
    """(bytes, files, .pyc files) under ``path``, symlinks not followed."""
    total = count = compiled = 0
    for folder, _, names in os.walk(path):
        for name in names:
            total += (Path(folder) / name).lstat().st_size
            count += 1
            compiled += name.endswith(".pyc")
    return total, count, compiled


def package_sizes(build: Path = BUILD_DIR) -> list[Artifact] | None:
    """The layer's and each function's size as ``sam build`` left them; None without a build."""
    if not build.is_dir():
        return None
    found = []
    for entry in sorted(path for path in build.iterdir() if path.is_dir()):
        size, files, compiled = tree_size(entry)
        content = entry / "python"  # a layer's packages; a function's folder holds its code only
        parts = sorted(
            (
                (part.name, tree_size(part)[0] if part.is_dir() else part.lstat().st_size)
                for part in (content.iterdir() if content.is_dir() else ())
            ),
            key=lambda item: -item[1],
        )
        found.append(Artifact(entry.name, size, files, compiled, tuple(parts[:4])))
    return found


def human(size: int) -> str:
    return f"{size / 2**20:,.2f} MiB" if size >= 2**20 else f"{size / 2**10:,.1f} KiB"


def package_table(artifacts: Sequence[Artifact], build: Path = BUILD_DIR) -> str:
    built = time.strftime("%Y-%m-%d %H:%M", time.localtime(build.stat().st_mtime))
    rows = []
    for artifact in artifacts:
        target = "—"
        if artifact.name == "CryptoLayer":
            meets = artifact.size <= LAYER_TARGET_MIB * 2**20
            target = f"<= {LAYER_TARGET_MIB:g} MiB: {'meets' if meets else 'MISSES'}"
        rows.append(
            [
                artifact.name,
                human(artifact.size),
                artifact.files,
                artifact.compiled,
                ", ".join(f"{name} {human(size)}" for name, size in artifact.largest) or "—",
                target,
            ]
        )
    headers = [
        f"`sam build` artifact ({built}), unzipped",
        "size",
        "files",
        ".pyc",
        "largest entries",
        "target",
    ]
    return markdown_table(headers, rows, right=(1, 2, 3))


# --- all of it ------------------------------------------------------------------------------------------------


@dataclass
class Report:
    """The tables, their figures (for ``--json``), the targets missed and what could not be measured."""

    tables: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    misses: list[str] = field(default_factory=list)

    def attempt(self, what: str, build: Callable[[], str]) -> None:
        try:
            self.tables.append(build())
        except Exception as error:  # one section failing must not hide the others
            self.failures.append(f"{what} not measured: {type(error).__name__}: {error}")


def cold_section(aws: LocalAws, cache: Path, runs: int, report: Report) -> str:
    """The cold-start table: :func:`cold_targets`, and the handlers again without the layer's bytecode (the
    figures and the targets missed go to ``report``)."""
    targets = cold_targets(aws)
    handlers = [target for target in targets if target.handler is not None]
    others = [target for target in targets if target.handler is None]
    targets = [*handlers, *without_layer_bytecode(handlers, cache), *others]
    runs_by_label = cold_starts(targets, runs)
    figures = cold_figures(targets, runs_by_label)
    report.figures["cold_start"] = figures
    report.figures["secrets_extension_requests"] = aws.extension.requests if aws.extension else 0
    report.misses += cold_misses([row for row in figures if NO_PYC not in row["label"]])
    return cold_table(targets, runs_by_label)


def import_section(aws: LocalAws) -> str:
    """The import-profile table of every handler of :func:`cold_targets`."""
    profiles = {
        target.label.split(" (")[0]: import_profile(target)
        for target in cold_targets(aws)
        if target.handler is not None
    }
    return import_table(profiles)


def start_functions(aws: LocalAws, partner: HttpsServer) -> dict[str, Function]:
    """The three functions imported in this process, each in its environment (forward: sending to ``partner``)."""
    functions = {}
    for name in ("encrypt", "sign", "forward"):
        extra = partner_overrides(partner, sorted(aws.resources.profiles)) if name == "forward" else {}
        env = aws.environment(name, **extra)
        with environment(env):
            module = import_handler(ROOT / "functions" / name / "app.py")
        functions[name] = Function(name, module, env, aws.context(name))
    return functions


def warm_section(functions: Mapping[str, Function], aws: LocalAws, report: Report) -> str:
    rows = warm_path(functions, aws)
    report.figures["warm"] = [dataclasses.asdict(row) for row in rows]
    return warm_table(rows)


def batch_section(forward: Function, aws: LocalAws, partner: HttpsServer, report: Report) -> str:
    result = sqs_batch(forward, aws, partner)
    relative = result.ten_s / result.one_s
    report.figures["sqs_batch"] = {**dataclasses.asdict(result), "ratio": relative, "target": BATCH_TARGET}
    if relative > BATCH_TARGET:
        report.misses.append(f"sqs batch: ten records in {relative:.2f}x one (target <= {BATCH_TARGET:g}x)")
    return batch_table(result)


def package_section(artifacts: Sequence[Artifact], report: Report) -> str:
    report.figures["packages"] = [dataclasses.asdict(artifact) for artifact in artifacts]
    for artifact in artifacts:
        if artifact.name == "CryptoLayer" and artifact.size > LAYER_TARGET_MIB * 2**20:
            report.misses.append(
                f"package: the layer is {human(artifact.size)} unzipped (target <= {LAYER_TARGET_MIB:g} MiB)"
            )
    return package_table(artifacts)


def measure(runs: int = COLD_RUNS) -> Report:
    """Every table of this module (see the module docstring), their figures and the targets missed."""
    report = Report()
    try:
        with LocalAws() as aws, tempfile.TemporaryDirectory(prefix="sealgate-bench-pyc-") as cache:
            report.attempt("cold start", lambda: cold_section(aws, Path(cache), runs, report))
            report.attempt("import profile", lambda: import_section(aws))
            with slow_partner() as partner, quiet():
                functions = start_functions(aws, partner)
                report.attempt("warm path", lambda: warm_section(functions, aws, report))
                report.attempt("sqs batch", lambda: batch_section(functions["forward"], aws, partner, report))
    except Exception as error:  # local AWS, the partner or the functions did not start
        report.failures.append(f"functions not measured: {type(error).__name__}: {error}")
    artifacts = package_sizes()
    if artifacts is None:
        report.tables.append(
            f"Package size: no `sam build` output in {BUILD_DIR.relative_to(ROOT)}: run make sam-build"
        )
    else:
        report.attempt("package size", lambda: package_section(artifacts, report))
    return report
