"""``make verify``: every figure of the reliability, security and performance work, in one run and one table.

Each step is one of the project's own commands, run as its own process with ``--json``; this script only runs
them in turn, reads what they wrote and prints one summary (also ``.verify/figures.md`` and
``.verify/figures.json``). Steps:

- ``leaks``: the leak detector's figures from the last ``make test`` (``.verify/leaks.json``; it runs there,
  over everything the test suite captures);
- ``soak``: 1000 forwards over every partner with about 20 % injected partner faults (``sealgate_local soak``);
- ``fuzz``: schemathesis over ``openapi.json`` plus hand-written hostile input (``scripts/fuzz.py``);
- ``load``: 8 and 32 signed clients against the local API (``scripts/load.py``);
- ``audit``: checkov, cfn-lint (serverless rules), bandit, pip-audit (``scripts/audit.sh``);
- ``bench``: cold starts beside a plain handler, SQS batches, layer size, scheme throughput (``scripts/bench.py``).

The gates are the correctness and security targets (nothing lost, duplicated, misreported or leaked; no 5xx,
no answer outside the error contract; every audit check passed): any one missed makes the exit status 1.
The performance targets are measured and printed beside them; ``make bench`` alone exits non-zero on a miss,
while here a miss is reported (``PERF MISSED``) without failing the run: they are ratios taken on whatever
machine runs this, and the note of the performance issue says what stands in the way.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".verify"
PY = str(ROOT / ".venv" / "bin" / "python")
CHECKOUT = {"PYTHONPATH": f"{ROOT / 'layers' / 'crypto'}{os.pathsep}{ROOT / 'local'}"}


@dataclass
class Step:
    """One command, the JSON it writes, and how to read its figures into rows and gates."""

    name: str
    command: list[str]
    read: Callable[[dict[str, Any]], tuple[list[tuple[str, str]], list[str]]]  # -> (rows, gate failures)
    runs: bool = True  # False: figures written by an earlier command (make test)


@dataclass
class Result:
    name: str
    seconds: float = 0.0
    status: int | None = None
    rows: list[tuple[str, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    perf_misses: list[str] = field(default_factory=list)


def _leaks(f: dict[str, Any]) -> tuple[list[tuple[str, str]], list[str]]:
    rows = [
        ("tests scanned", str(f["tests"])),
        ("items scanned", f"{f['items']} ({f['bytes'] / 1e6:.1f} MB)"),
        ("by source", ", ".join(f"{k} {v}" for k, v in sorted(f.get("by_source", {}).items())) or "-"),
        ("leaks found (target 0)", str(f["leaks"])),
    ]
    return rows, [f"{f['leaks']} leaks in {f['leaking']} tests"] if f["leaks"] else []


def _get(f: dict[str, Any], *path: str, default: Any = None) -> Any:
    for key in path:
        if not isinstance(f, dict) or key not in f:
            return default
        f = f[key]
    return f


def _soak(f: dict[str, Any]) -> tuple[list[tuple[str, str]], list[str]]:
    latency = f.get("latency_ms", {})
    rows = [
        ("sent = delivered + dead-lettered", f"{f['sent']} = {f['delivered']} + {f['dead_lettered']}"),
        ("faults injected", ", ".join(f"{k} {v}" for k, v in sorted(f.get("faults_injected", {}).items()))),
        (
            "partner requests per message",
            f"{f['requests_per_message']:.2f} (max {f['max_requests_per_message']})",
        ),
        (
            "duplicates at the partner after a 2xx reached the gateway (target 0)",
            str(f["duplicates_after_2xx"]),
        ),
        ("outcomes that disagree with what the partner saw (target 0)", str(f["disagreements"])),
        ("recorded attempts that differ from partner requests (target 0)", str(f["attempts_not_requests"])),
        (
            "delivery latency p50 / p90 / p99",
            " / ".join(f"{latency.get(k, 0):.0f} ms" for k in ("p50", "p90", "p99")),
        ),
        ("wall time", f"{f['wall_seconds']:.0f} s"),
    ]
    failures = [f"{c['name']}: {c['detail']}" for c in f.get("checks", []) if not c.get("ok")]
    return rows, failures


def _fuzz(f: dict[str, Any]) -> tuple[list[tuple[str, str]], list[str]]:
    rows = [
        (
            "requests tried",
            f"{f['requests']} ({', '.join(f'{k} {v}' for k, v in f['requests_by_source'].items())})",
        ),
        ("5xx answers (target 0)", str(f["server_errors"])),
        ("answers outside {code, message} (target 0)", str(f["contract_violations"])),
        ("tampered tokens or notifications accepted (target 0)", str(f["tampered_accepted"])),
        ("requests to a URL a payload chose (target 0)", str(f["url_picked"])),
        ("headers injected (target 0)", str(f["headers_injected"])),
        ("expected refusals missing (target 0)", str(f["expectations_missed"])),
        ("bounded work refused within", f"{f['bounded_work_refused_in_ms_max']} ms"),
    ]
    return rows, [str(x) for x in f.get("targets_missed", [])]


def _load(f: dict[str, Any]) -> tuple[list[tuple[str, str]], list[str]]:
    rows: list[tuple[str, str]] = []
    failures: list[str] = []
    for run in f.get("runs", []):
        clients = run["concurrency"]
        rows.append(
            (
                f"{clients} clients, {run['seconds']:.0f} s",
                f"{run['requests_per_second']:.1f} req/s, p50 {run['p50_ms']:.0f} ms, p99 {run['p99_ms']:.0f} ms, "
                f"errors {run['errors']}, 5xx {run['server_errors']}",
            )
        )
        if run["errors"] or run["server_errors"]:
            failures.append(f"{clients} clients: {run['errors']} errors, {run['server_errors']} 5xx")
    return rows, failures


def _audit(f: dict[str, Any]) -> tuple[list[tuple[str, str]], list[str]]:
    rows = []
    for tool, o in f.get("tools", {}).items():
        text = (
            f"{o['passed']} passed, {o['failed']} failed, {len(o.get('skipped', []))} skipped with a reason"
        )
        if o.get("findings"):
            text += f", {len(o['findings'])} findings"
        if o.get("unchecked"):
            text += f", {len(o['unchecked'])} not checkable against this registry"
        rows.append((tool, text))
    return rows, [tool for tool, o in f.get("tools", {}).items() if not o.get("ok")]


def _bench(f: dict[str, Any]) -> tuple[list[tuple[str, str]], list[str]]:
    rows = []
    for row in f.get("cold_start", []):
        if row.get("median_s") is None:
            continue
        ratio = f", {row['ratio']:.2f}x its baseline" if row.get("ratio") else ""
        rows.append((f"cold start + first answer: {row['label']}", f"{row['median_s'] * 1000:.0f} ms{ratio}"))
    batch = f.get("sqs_batch")
    if batch:
        rows.append(
            (
                "SQS batch of ten vs one",
                f"{batch['ten_s'] * 1000:.0f} ms vs {batch['one_s'] * 1000:.0f} ms: {batch['ratio']:.2f}x "
                f"(target <= {batch['target']}x)",
            )
        )
    for artifact in f.get("packages", []):
        size = artifact["size"]
        shown = f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.1f} KiB"
        rows.append((f"package: {artifact['name']}", f"{shown} unzipped"))
    process = f.get("process")
    if process:
        rows.append(("AesBridge whole process vs the reference", f"{process['ratio']:.0f}x"))
    rows.append(("machine", str(f.get("machine", "?"))))
    return rows, [f"could not measure: {x}" for x in f.get("failures", [])]


def steps(quick: bool) -> list[Step]:
    soak_messages = "300" if quick else "1000"
    fuzz_seconds, fuzz_examples = ("40", "20") if quick else ("120", "200")
    load_seconds = "5" if quick else "10"
    return [
        Step("leaks", [], _leaks, runs=False),
        Step(
            "soak",
            [
                PY,
                "-m",
                "sealgate_local",
                "soak",
                "--messages",
                soak_messages,
                "--json",
                str(OUT / "soak.json"),
            ],
            _soak,
        ),
        Step(
            "fuzz",
            [
                PY,
                "scripts/fuzz.py",
                "--seconds",
                fuzz_seconds,
                "--examples",
                fuzz_examples,
                "--json",
                str(OUT / "fuzz.json"),
            ],
            _fuzz,
        ),
        Step(
            "load",
            [PY, "scripts/load.py", "--duration", load_seconds, "--json", str(OUT / "load.json")],
            _load,
        ),
        Step("audit", ["bash", "scripts/audit.sh", "--json", str(OUT / "audit.json")], _audit),
        Step("bench", [PY, "scripts/bench.py", "--json", str(OUT / "bench.json")], _bench),
    ]


def run(step: Step) -> Result:
    result = Result(step.name)
    path = OUT / f"{step.name}.json"
    if step.runs:
        path.unlink(missing_ok=True)
        print(
            f"\n=== verify: {step.name}: {' '.join(step.command[1:] if step.command[0] == PY else step.command)}",
            flush=True,
        )
        began = time.monotonic()
        env = {**os.environ, **CHECKOUT}
        result.status = subprocess.run(step.command, cwd=ROOT, env=env, check=False).returncode
        result.seconds = time.monotonic() - began
    if not path.is_file():
        result.failures.append(f"no figures ({path.name} missing; exit status {result.status})")
        return result
    figures = json.loads(path.read_text(encoding="utf-8"))
    result.rows, result.failures = step.read(figures)
    if step.name == "bench":
        result.perf_misses = [str(x) for x in figures.get("misses", [])]
        if result.status not in (0, 2):  # 2: a target missed (reported, not a gate here)
            result.failures.append(f"bench exited {result.status}")
    elif result.status not in (None, 0) and not result.failures:
        result.failures.append(f"exited {result.status}")
    return result


def machine() -> str:
    cpus = os.cpu_count() or 0
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpus} CPUs {model or platform.machine()}, {platform.system()}, Python {platform.python_version()}"
    )


def report(results: list[Result], total: float) -> str:
    lines = [
        f"# make verify: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f}; {total:.0f} s in all.",
        "",
        "| step | figure | value |",
        "|---|---|---|",
    ]
    for r in results:
        for name, value in r.rows:
            lines.append(f"| {r.name} | {name} | {value} |")
        verdict = "FAILED: " + "; ".join(r.failures) if r.failures else "ok"
        lines.append(f"| {r.name} | **verdict** ({r.seconds:.0f} s) | {verdict} |")
        lines.extend(f"| {r.name} | PERF MISSED | {miss} |" for miss in r.perf_misses)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make verify", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="run only these steps (repeatable)")
    parser.add_argument("--skip", action="append", default=[], help="skip these steps (repeatable)")
    parser.add_argument("--quick", action="store_true", help="smaller soak, fuzz and load (a smoke run)")
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    began = time.monotonic()
    results = [
        run(step)
        for step in steps(args.quick)
        if (not args.only or step.name in args.only) and step.name not in args.skip
    ]
    total = time.monotonic() - began
    text = report(results, total)
    (OUT / "figures.md").write_text(text, encoding="utf-8")
    (OUT / "figures.json").write_text(
        json.dumps([r.__dict__ for r in results], indent=2, default=str) + "\n", encoding="utf-8"
    )
    print("\n" + text)
    failed = [r.name for r in results if r.failures]
    print(f"verify: {'FAILED: ' + ', '.join(failed) if failed else 'every gate passed'} ({total:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
