"""``scripts/load.py`` in miniature: the local stack under concurrent signed requests answers every one with its
route's success status (no error, no 5xx). No timing is asserted; the figures are the script's to report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_short_load_run_has_no_errors_and_no_5xx(tmp_path: Path) -> None:
    report = tmp_path / "load.json"
    arguments = ["--concurrency", "2", "8", "--duration", "30", "--requests", "40", "--pool-size", "2"]
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "load.py"),
            *arguments,
            "--drain-seconds",
            "0",
            "--json",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )

    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    result = json.loads(report.read_text(encoding="utf-8"))
    runs = {run["concurrency"]: run for run in result["runs"]}
    assert sorted(runs) == [2, 8]
    for run in runs.values():
        assert run["requests"] == 40  # the request limit stops a run long before the duration
        assert (run["errors"], run["server_errors"]) == (0, 0)
        assert set(run["statuses"]) <= {"200", "202"}
        assert run["p50_ms"] <= run["p99_ms"]
        assert {name.split()[0] for name in run["by_call"]} == {"encrypt", "forward", "sign"}
    assert set(result["mix"]) >= {f"encrypt {p}" for p in ("dlocal", "infosimples", "netcore", "paykun")}
    assert "| 8 | 40 |" in done.stdout
