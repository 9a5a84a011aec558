"""``make run`` (``python -m sealgate_local run``) end to end: it prints throwaway credentials and signed examples,
and the whole local stack behind it checks SigV4 as API Gateway does.

Every ``curl`` it prints is run as printed (``curl --aws-sigv4`` with ``$KEY`` and ``$SECRET`` from the printed
``export``) and must be answered 2xx; so must its Python example (``scripts/call_sealgate.py``, botocore's
signer). The same calls unsigned, or signed for another region, are refused 403 in the error contract, while
the webhook example (public) needs no signature. The functions see the signer as their caller.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.test_local_api_sigv4 import CURL_SIGV4, curl_version

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 180.0
READY = "Press Ctrl-C to stop."


@dataclass
class Running:
    """What ``make run`` printed before it was ready, and the environment its examples need."""

    process: subprocess.Popen[str]
    output: list[str]
    errors: list[str]
    environment: dict[str, str]

    @property
    def text(self) -> str:
        return "\n".join(self.output)

    def commands(self, prefix: str) -> list[str]:
        """The printed commands starting with ``prefix``, continuation lines joined."""
        found, current = [], ""
        for line in self.output:
            if current:
                current += "\n" + line
            elif line.strip().startswith(prefix):
                current = line.strip()
            if current and not current.endswith("\\"):
                found.append(current)
                current = ""
        return found

    def shell(self, command: str) -> tuple[str, str]:
        """(HTTP status, body) of a printed command run in bash with ``KEY`` and ``SECRET`` set."""
        done = subprocess.run(
            ["bash", "-c", command + " -w '\\n%{http_code}'"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=self.environment,
            cwd=ROOT,
        )
        body, _, status = done.stdout.rpartition("\n")
        return status, body


def route_of(command: str) -> str:
    """The action of the local API a command calls (``encrypt``, ``webhooks``...)."""
    found = re.search(r"http://127\.0\.0\.1:\d+/\w+/v1/(\w+)/", command)
    assert found is not None, command.splitlines()[0]
    return found[1]


def audits(running: Running, action: str) -> list[dict[str, object]]:
    """The audit records the functions printed (``--verbose`` echoes their lines to stderr) for ``action``."""
    time.sleep(0.5)  # stderr is read by a thread
    found = []
    for line in list(running.errors):
        function, _, text = line.partition("] ")
        if not function.startswith("[") or not text.startswith("{"):
            continue
        record = json.loads(text).get("audit")
        if isinstance(record, dict) and record.get("action") == action:
            found.append(record)
    return found


def _read(stream: object, into: list[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.append(line.rstrip("\n"))
        lines.put(line)
    lines.put(None)


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    if shutil.which("curl") is None:
        pytest.skip("no curl")
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in ("KEY", "SECRET")
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "sealgate_local", "run", "--verbose"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    output: list[str] = []
    errors: list[str] = []
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read, args=(process.stdout, output, lines), daemon=True).start()
    threading.Thread(target=_read, args=(process.stderr, errors, queue.Queue()), daemon=True).start()
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                pytest.fail("make run exited before it was ready:\n" + "\n".join(output + errors[-20:]))
            if line.strip() == READY:
                break
        exported = re.search(r"export KEY=(\S+) SECRET=(\S+)", "\n".join(output))
        assert exported is not None, "make run printed no credentials"
        yield Running(
            process,
            output,
            errors,
            {**environment, "KEY": exported[1], "SECRET": exported[2], "AWS_EC2_METADATA_DISABLED": "true"},
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_make_run_prints_throwaway_credentials_and_signed_examples(running: Running) -> None:
    text = running.text
    assert "Throwaway credentials, valid for this run only" in text
    assert re.search(r"export KEY=AKIALOCAL[A-Z2-7]{11} SECRET=\S{40}\b", text)
    curls = running.commands("curl ")
    iam = [c for c in curls if route_of(c) != "webhooks"]
    assert iam
    assert all(
        "--aws-sigv4 'aws:amz:us-east-1:execute-api'" in c and '--user "$KEY:$SECRET"' in c for c in iam
    )
    assert all("--aws-sigv4" not in c for c in curls if route_of(c) == "webhooks")
    assert running.environment["SECRET"] not in "\n".join(curls)  # the examples read it from the shell


def test_every_printed_curl_and_the_python_example_are_answered_2xx(running: Running) -> None:
    version = curl_version()
    if version is None or version < CURL_SIGV4:
        pytest.skip(f"curl {version} has no --aws-sigv4 (7.75 or later)")
    curls = running.commands("curl ")
    forward = next(c for c in curls if route_of(c) == "forward" and "-X POST" in c)
    status, body = running.shell(forward)
    assert status == "202", body
    outcome_id = json.loads(body)["id"]

    for command in curls:
        status, body = running.shell(command.replace("<id>", outcome_id))
        assert status.startswith("2"), (command.splitlines()[0], status, body)

    [python] = running.commands("AWS_ACCESS_KEY_ID=")
    assert "scripts/call_sealgate.py" in python
    done = subprocess.run(
        ["bash", "-c", python.replace("python ", f"{sys.executable} ", 1)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=running.environment,
        cwd=ROOT,
    )
    assert (done.returncode, done.stderr.strip()) == (0, "200"), done.stdout
    assert "payload" in json.loads(done.stdout)


def test_unsigned_or_wrongly_scoped_calls_are_refused_and_never_reach_a_function(running: Running) -> None:
    encrypt = next(c for c in running.commands("curl ") if route_of(c) == "encrypt")
    unsigned = encrypt.replace("--aws-sigv4 'aws:amz:us-east-1:execute-api'", "").replace(
        '--user "$KEY:$SECRET"', ""
    )
    other_region = encrypt.replace("aws:amz:us-east-1:execute-api", "aws:amz:eu-west-1:execute-api")
    other_service = encrypt.replace("aws:amz:us-east-1:execute-api", "aws:amz:us-east-1:lambda")
    audits_before = len(audits(running, "encrypt"))

    assert [
        (s, json.loads(b)["code"]) for s, b in map(running.shell, (unsigned, other_region, other_service))
    ] == [
        ("403", "missing_authentication"),
        ("403", "invalid_signature"),
        ("403", "invalid_signature"),
    ]
    assert len(audits(running, "encrypt")) == audits_before
    assert any(
        "[local-api] POST /v1/encrypt/{partner}: MISSING_AUTHENTICATION_TOKEN" in e for e in running.errors
    )


def test_the_functions_see_the_signing_iam_user_as_caller(running: Running) -> None:
    encrypt = next(c for c in running.commands("curl ") if route_of(c) == "encrypt")
    status, _ = running.shell(encrypt)
    assert status == "200"
    callers = {str(record.get("caller")) for record in audits(running, "encrypt")}
    assert len(callers) == 1
    assert re.fullmatch(r"arn:aws:iam::\d{12}:user/local-developer", callers.pop())
