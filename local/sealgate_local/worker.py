"""One function in its own long-lived process, as Lambda runs it: init once, then one event at a time.

Child side (``python -m sealgate_local.worker --code DIR --handler app.lambda_handler ...``):

- ``sys.path`` starts with the function's code folder (Lambda's ``/var/task``), then, with ``--layer DIR``, a
  temporary folder holding only a symlink to ``DIR/sealgate``: the layer's own package goes ahead of the venv's
  editable install, while its third-party packages (arm64 wheels from ``sam build``, unloadable here) stay
  out; ``cryptography``, ``jwcrypto`` and Powertools come from the venv. The local stack always passes a layer
  (the checkout's ``layers/crypto``, or the built one): an editable install pointing at another tree (a copy,
  a stale venv) is never what a worker runs.
- The worker module itself comes from the parent's ``sealgate_local`` (``PYTHONPATH``), not the venv's.
- The handler module is imported once (the init phase: the functions read their secrets here).
- Results go on a dedicated pipe: the original stdout is duplicated for them, and fd 1 is pointed at stderr,
  so everything the function prints (Powertools JSON logs, EMF metric lines, tracebacks) reaches the parent
  on the worker's stderr.

Protocol, one JSON object per line::

    stdin    {"event": {...}, "context": {"aws_request_id": "..."}}
    results  {"type": "ready", "sealgate": "<folder>", "function": "<file>", "harness": "<folder>"}  once:
             where the sealgate package, the handler's module and this worker module were loaded from
             {"type": "init_error", "errorType": "ImportError"}                        instead, then exit
             {"type": "result", "result": <the handler's return value>}               per event
             {"type": "error", "errorType": "KeyError"}                               per event that raised
    stderr   whatever the function prints, then :data:`LOGS_END` before each answer, so the parent hands out
             a result only once it holds every line printed before it

Parent side: :class:`Worker` starts and talks to one such process, killing it when an invocation outlives the
function's timeout (Lambda's "Task timed out"); :class:`WorkerPool` keeps a few per function, so that an SQS
batch being delivered does not hold up an API call to the same function (Lambda would run them concurrently).
A worker whose ``sealgate`` is not its spec's layer, or whose handler module is not in its code folder, fails
its start (:class:`WorkerFailed`): tests and the demo cannot silently run other code than they name.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

#: The line a worker writes to stderr after everything an event (or the init phase) printed.
LOGS_END = "\x1esealgate-local-worker:logs-end\x1e"
LOGS_WAIT = 2.0

# --- child side --------------------------------------------------------------------------------------------


@dataclass
class LambdaContext:
    """What a handler reads of Lambda's context object; the remaining time counts down from ``timeout``."""

    function_name: str
    memory_limit_in_mb: int
    timeout: float
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function would be stopped."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _layer_path(layer: Path) -> str:
    """A temporary folder with only ``sealgate`` from the built layer (see the module docstring)."""
    holder = Path(tempfile.mkdtemp(prefix="sealgate-layer-"))
    atexit.register(shutil.rmtree, holder, ignore_errors=True)
    (holder / "sealgate").symlink_to(layer / "sealgate", target_is_directory=True)
    return str(holder)


def _loaded_from(module: str, *, folder: bool) -> str | None:
    """The resolved file (or, for a package, folder) ``module`` was imported from; None if not imported."""
    loaded = sys.modules.get(module)
    file = getattr(loaded, "__file__", None)
    if not file:
        return None
    path = Path(file).resolve()
    return str(path.parent if folder else path)


def _origins(handler_module: str) -> dict[str, str | None]:
    return {
        "sealgate": _loaded_from("sealgate", folder=True),
        "function": _loaded_from(handler_module, folder=False),
        "harness": _loaded_from("sealgate_local", folder=True),
    }


def _child(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sealgate_local.worker")
    parser.add_argument("--code", required=True, type=Path, help="the function's code folder")
    parser.add_argument("--handler", default="app.lambda_handler")
    parser.add_argument("--layer", type=Path, help="a built layer's python/ folder (sam build)")
    parser.add_argument("--function-name", required=True)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--memory", type=int, default=128)
    parser.add_argument("--arn", default="")
    args = parser.parse_args(argv)

    results = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)

    def answer(message: Mapping[str, Any]) -> None:
        try:
            text = json.dumps(message, separators=(",", ":"))
        except (TypeError, ValueError):  # a result JSON cannot carry: Lambda's marshal error
            text = json.dumps({"type": "error", "errorType": "Runtime.MarshalError"})
        sys.stdout.flush()
        # Ends this event's log lines: the parent hands out the result only once it has read them all.
        sys.stderr.write(LOGS_END + "\n")
        sys.stderr.flush()
        results.write(text + "\n")
        results.flush()

    code = str(args.code.resolve())
    sys.path[:] = [code] + [p for p in sys.path if p not in ("", code, os.getcwd())]
    if args.layer is not None:
        sys.path.insert(1, _layer_path(args.layer.resolve()))

    module_name, _, function_name = args.handler.rpartition(".")
    try:
        handler: Callable[[Any, Any], Any] = getattr(importlib.import_module(module_name), function_name)
    except Exception as error:
        traceback.print_exc()
        answer({"type": "init_error", "errorType": type(error).__name__})
        return 1
    answer({"type": "ready", **_origins(module_name)})

    for line in sys.stdin:
        request = json.loads(line)
        context = LambdaContext(
            function_name=args.function_name,
            memory_limit_in_mb=args.memory,
            timeout=args.timeout,
            aws_request_id=str(request.get("context", {}).get("aws_request_id") or uuid.uuid4()),
            invoked_function_arn=args.arn,
            log_group_name=f"/aws/lambda/{args.function_name}",
            log_stream_name="local",
        )
        try:
            result = handler(request["event"], context)
        except Exception as error:
            traceback.print_exc()
            answer({"type": "error", "errorType": type(error).__name__})
        else:
            answer({"type": "result", "result": result})
    return 0


# --- parent side -------------------------------------------------------------------------------------------

#: This module's ``sealgate_local`` package: a worker runs the same harness as its parent.
HARNESS_PATH = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Origins:
    """Where one worker loaded its code from (resolved paths; None: not imported)."""

    sealgate: str | None
    function: str | None
    harness: str | None

    def outside(self, root: Path) -> list[str]:
        """``what: path`` for each loaded piece that is not inside ``root`` (a checkout, a build folder)."""
        root = root.resolve()
        found = []
        for what, where in (
            ("sealgate", self.sealgate),
            ("function", self.function),
            ("harness", self.harness),
        ):
            if where is not None and not Path(where).is_relative_to(root):
                found.append(f"{what}: {where}")
        return found


@dataclass(frozen=True)
class FunctionSpec:
    """How to start one function: its code, handler, environment and limits (from ``template.yaml``)."""

    name: str
    code_dir: Path
    handler: str
    timeout: float
    memory: int
    environment: Mapping[str, str]
    layer_dir: Path | None = None
    arn: str = ""

    def misplaced(self, origins: Origins) -> list[str]:
        """What a worker loaded from elsewhere than this spec names: ``sealgate`` not from ``layer_dir``, the
        handler's module not from ``code_dir``."""
        problems = []
        layer = None if self.layer_dir is None else (self.layer_dir / "sealgate").resolve()
        if layer is not None and origins.sealgate is not None and Path(origins.sealgate) != layer:
            problems.append(f"sealgate from {origins.sealgate}, not the layer {layer}")
        code = self.code_dir.resolve()
        if origins.function is None or not Path(origins.function).is_relative_to(code):
            problems.append(f"handler module from {origins.function}, not {code}")
        return problems


@dataclass(frozen=True)
class Invocation:
    """How one invocation ended: the handler's result, or the error type (or a timeout, or a dead worker)."""

    ok: bool
    result: Any = None
    error_type: str | None = None
    duration_ms: float = 0.0

    @property
    def timed_out(self) -> bool:
        return self.error_type == "TimedOut"


LogSink = Callable[[str, str], None]  # (function name, one line the function printed)


class WorkerFailed(RuntimeError):
    """The worker process did not start (its init raised, or it exited)."""


class Worker:
    """One worker process for ``spec``; ``invoke`` is one event at a time (callers serialise)."""

    def __init__(self, spec: FunctionSpec, log_sink: LogSink) -> None:
        self.spec = spec
        self._log_sink = log_sink
        self._results: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._logs_read: queue.Queue[None] = queue.Queue()
        command = [
            sys.executable,
            "-u",
            "-m",
            "sealgate_local.worker",
            "--code",
            str(spec.code_dir),
            "--handler",
            spec.handler,
            "--function-name",
            spec.environment.get("AWS_LAMBDA_FUNCTION_NAME", spec.name),
            "--timeout",
            str(spec.timeout),
            "--memory",
            str(spec.memory),
            "--arn",
            spec.arn,
        ]
        if spec.layer_dir is not None:
            command += ["--layer", str(spec.layer_dir)]
        # The child's ``-m sealgate_local.worker`` is this very module, whatever the venv's install points at.
        environment = {**spec.environment, "PYTHONPATH": str(HARNESS_PATH)}
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command,
            cwd=spec.code_dir,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self._threads = [
            threading.Thread(target=self._read_results, name=f"{spec.name}-results", daemon=True),
            threading.Thread(target=self._read_logs, name=f"{spec.name}-logs", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self.origins: Origins | None = None

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def wait_ready(self, timeout: float) -> None:
        """Wait for the init phase; :class:`WorkerFailed` if it raised, exited or took too long."""
        try:
            message = self._results.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise WorkerFailed(f"{self.spec.name}: init took longer than {timeout:.0f} s") from None
        if message is None or message.get("type") != "ready":
            error = (message or {}).get("errorType", "exited")
            self.kill()
            raise WorkerFailed(f"{self.spec.name}: init failed ({error})")
        self._wait_logs()
        origins = Origins(message.get("sealgate"), message.get("function"), message.get("harness"))
        problems = self.spec.misplaced(origins)
        if problems:
            self.kill()
            raise WorkerFailed(f"{self.spec.name}: loaded other code than its spec: {'; '.join(problems)}")
        self.origins = origins

    @property
    def sealgate_origin(self) -> str | None:
        """The folder the ``sealgate`` package was imported from (None: not imported, or not ready)."""
        return None if self.origins is None else self.origins.sealgate

    def invoke(self, event: Mapping[str, Any], request_id: str) -> Invocation:
        """Run the handler on ``event``; past the function's timeout the process is killed (like Lambda)."""
        started = time.perf_counter()
        stdin = self._process.stdin
        if stdin is None or not self.alive:
            return Invocation(ok=False, error_type="WorkerExited")
        try:
            stdin.write(json.dumps({"event": event, "context": {"aws_request_id": request_id}}) + "\n")
            stdin.flush()
        except OSError:
            return Invocation(ok=False, error_type="WorkerExited")
        try:
            message = self._results.get(timeout=self.spec.timeout + 1.0)
        except queue.Empty:
            self.kill()
            message = {"type": "error", "errorType": "TimedOut"}
        elapsed = (time.perf_counter() - started) * 1000
        if message is not None:
            self._wait_logs()
        if message is None:
            return Invocation(ok=False, error_type="WorkerExited", duration_ms=elapsed)
        if message.get("type") == "result":
            return Invocation(ok=True, result=message.get("result"), duration_ms=elapsed)
        return Invocation(ok=False, error_type=str(message.get("errorType")), duration_ms=elapsed)

    def close(self, timeout: float = 5.0) -> None:
        """End the process: stdin closed (it exits between events), killed if it does not."""
        if self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        for thread in self._threads:
            thread.join(timeout=2.0)

    def kill(self) -> None:
        if self.alive:
            self._process.kill()
        self._process.wait()

    def _read_results(self) -> None:
        stream: IO[str] | None = self._process.stdout
        if stream is not None:
            for line in stream:
                with contextlib.suppress(json.JSONDecodeError):
                    self._results.put(json.loads(line))
        self._results.put(None)

    def _read_logs(self) -> None:
        stream: IO[str] | None = self._process.stderr
        if stream is None:
            return
        for line in stream:
            text = line.rstrip("\n")
            if text == LOGS_END:
                self._logs_read.put(None)
            else:
                self._log_sink(self.spec.name, text)
        self._logs_read.put(None)

    def _wait_logs(self) -> None:
        """Wait until the lines printed before the last answer have reached the sink."""
        with contextlib.suppress(queue.Empty):
            self._logs_read.get(timeout=LOGS_WAIT)


class WorkerPool:
    """Up to ``size`` workers of one function: an idle one serves each event, a new one starts when all are
    busy (a cold start), and a dead one (timed out, crashed) is replaced on the next event."""

    def __init__(self, spec: FunctionSpec, log_sink: LogSink, *, size: int = 3, init_timeout: float = 60.0):
        self.spec = spec
        self._log_sink = log_sink
        self._size = size
        self._init_timeout = init_timeout
        self._idle: list[Worker] = []
        self._all: list[Worker] = []
        self._lock = threading.Condition()
        self._closed = False
        self._starting = 0
        self.invocations = 0
        self.errors: dict[str, int] = {}

    def start(self) -> None:
        """Start one worker now (so the first event finds it warm); raises :class:`WorkerFailed`."""
        worker = self._spawn()
        with self._lock:
            self._idle.append(worker)

    @property
    def sealgate_origins(self) -> set[str | None]:
        """Where each worker imported the ``sealgate`` package from."""
        with self._lock:
            return {worker.sealgate_origin for worker in self._all}

    @property
    def origins(self) -> list[Origins]:
        """Where each ready worker loaded ``sealgate``, its handler module and the harness from."""
        with self._lock:
            return [worker.origins for worker in self._all if worker.origins is not None]

    def invoke(self, event: Mapping[str, Any], request_id: str | None = None) -> Invocation:
        """Invoke the function once on some worker (waiting for one if ``size`` are busy)."""
        worker = self._acquire()
        invocation = worker.invoke(event, request_id or str(uuid.uuid4()))
        with self._lock:
            self.invocations += 1
            if not invocation.ok and invocation.error_type is not None:
                self.errors[invocation.error_type] = self.errors.get(invocation.error_type, 0) + 1
            if worker.alive and not self._closed:
                self._idle.append(worker)
            else:
                self._all.remove(worker)
            self._lock.notify()
        if not worker.alive:
            worker.close(timeout=0)
        return invocation

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._all, self._idle = list(self._all), [], []
            self._lock.notify_all()
        for worker in workers:
            worker.close()

    def _acquire(self) -> Worker:
        with self._lock:
            while True:
                if self._closed:
                    raise WorkerFailed(f"{self.spec.name}: the local stack is stopping")
                if self._idle:
                    return self._idle.pop()
                if len(self._all) + self._starting < self._size:
                    self._starting += 1
                    break
                self._lock.wait()
        return self._spawn(reserved=True)

    def _spawn(self, *, reserved: bool = False) -> Worker:
        try:
            worker = Worker(self.spec, self._log_sink)
        finally:
            with self._lock:
                self._starting -= int(reserved)
        with self._lock:
            self._all.append(worker)
        try:
            worker.wait_ready(self._init_timeout)
        except WorkerFailed:
            with self._lock:
                self._all.remove(worker)
                self._lock.notify()
            worker.close(timeout=0)
            raise
        return worker


if __name__ == "__main__":
    sys.exit(_child())
