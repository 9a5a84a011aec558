"""Worker processes: what a function prints goes to the logs, not the results; timeouts, errors and a
failing init end as Lambda's would."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sealgate_local.function_logs import FunctionLogs
from sealgate_local.worker import FunctionSpec, WorkerFailed, WorkerPool

APP = """
import os, sys, time
print("init done")
def lambda_handler(event, context):
    print("handling", event["n"])
    print("to stderr", file=sys.stderr)
    if event.get("raise"):
        raise KeyError("boom")
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return {"n": event["n"], "remaining_ok": 0 < context.get_remaining_time_in_millis() <= 2000,
            "request_id": context.aws_request_id, "env": os.environ.get("ONLY_THIS"),
            "cwd": os.getcwd()}
"""


def spec(code: Path, *, timeout: float = 2.0) -> FunctionSpec:
    return FunctionSpec(
        name="probe",
        code_dir=code,
        handler="app.lambda_handler",
        timeout=timeout,
        memory=128,
        environment={"PATH": os.environ.get("PATH", ""), "ONLY_THIS": "yes"},
    )


@pytest.fixture
def code(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    return tmp_path


def test_results_stay_clean_while_prints_reach_the_logs(code: Path) -> None:
    logs = FunctionLogs()
    pool = WorkerPool(spec(code), logs.feed, size=1)
    try:
        pool.start()
        first = pool.invoke({"n": 1}, "req-1")
        second = pool.invoke({"n": 2}, "req-2")
        origins = pool.sealgate_origins
    finally:
        pool.close()

    assert first.ok
    assert first.result == {
        "n": 1,
        "remaining_ok": True,
        "request_id": "req-1",
        "env": "yes",
        "cwd": str(code),
    }
    assert second.result["n"] == 2
    printed = [line for _, line in logs.lines]
    assert printed == ["init done", "handling 1", "to stderr", "handling 2", "to stderr"]
    assert origins == {None}  # this function never imported the layer


def test_an_exception_is_an_error_and_the_worker_lives_on(code: Path) -> None:
    logs = FunctionLogs()
    pool = WorkerPool(spec(code), logs.feed, size=1)
    try:
        failed = pool.invoke({"n": 1, "raise": True})
        after = pool.invoke({"n": 2})
    finally:
        pool.close()

    assert (failed.ok, failed.error_type) == (False, "KeyError")
    assert logs.summary().unhandled_errors == 1
    assert after.ok
    assert pool.errors == {"KeyError": 1}


def test_past_its_timeout_the_worker_is_killed_and_replaced(code: Path) -> None:
    pool = WorkerPool(spec(code, timeout=0.5), FunctionLogs().feed, size=1)
    try:
        slow = pool.invoke({"n": 1, "sleep": 30})
        after = pool.invoke({"n": 2})
    finally:
        pool.close()

    assert slow.timed_out
    assert slow.duration_ms < 5000
    assert after.ok


def test_a_failing_init_is_worker_failed(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("raise ImportError('no layer')\n", encoding="utf-8")
    pool = WorkerPool(spec(tmp_path), FunctionLogs().feed, size=1)
    with pytest.raises(WorkerFailed, match="ImportError"):
        pool.start()
    pool.close()


def test_the_built_layer_package_goes_ahead_of_the_venv(tmp_path: Path, code: Path) -> None:
    layer = tmp_path / "layer" / "python"
    (layer / "sealgate").mkdir(parents=True)
    (layer / "sealgate" / "__init__.py").write_text("BUILT = True\n", encoding="utf-8")
    (code / "app.py").write_text(
        "import sealgate\ndef lambda_handler(event, context):\n    return getattr(sealgate, 'BUILT', False)\n",
        encoding="utf-8",
    )
    built = FunctionSpec(**{**spec(code).__dict__, "layer_dir": layer})
    pool = WorkerPool(built, FunctionLogs().feed, size=1)
    try:
        answer = pool.invoke({})
        origins = pool.sealgate_origins
    finally:
        pool.close()

    assert answer.result is True
    assert origins == {str((layer / "sealgate").resolve())}
