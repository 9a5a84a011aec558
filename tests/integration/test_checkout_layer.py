"""The local stack and the demo run the checkout's own code, whatever the venv's editable install points at.

A worker gets its layer explicitly (the checkout's ``layers/crypto``, put first on its path) and reports where
``sealgate``, its handler module and the worker harness came from; a worker that loaded anything else fails to
start. A copy of the tree, with a marker in its ``sealgate``, run from another directory must load the copy's
layer; the demo, started in a copy without it on the path, refuses loudly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from sealgate_local.function_logs import FunctionLogs
from sealgate_local.stack import LAYER_DIR, ROOT
from sealgate_local.worker import FunctionSpec, WorkerFailed, WorkerPool
from tests.conftest import CHECKOUT

PROBE = """
import sealgate

def lambda_handler(event, context):
    return {"marker": getattr(sealgate, "COPY_MARKER", None), "file": sealgate.__file__}
"""


def copy_tree(destination: Path) -> tuple[Path, str]:
    """The parts of this checkout a local stack runs (template, layer, functions, local tooling) copied to
    ``destination``, with a marker added to the copy's ``sealgate``; (the copy, the marker)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".aws-sam")
    for folder in ("layers", "functions", "local"):
        shutil.copytree(ROOT / folder, destination / folder, ignore=ignore)
    shutil.copy2(ROOT / "template.yaml", destination / "template.yaml")
    marker = f"copy-{uuid.uuid4().hex}"
    init = destination / "layers" / "crypto" / "sealgate" / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + f"\nCOPY_MARKER = {marker!r}\n", encoding="utf-8")
    return destination, marker


def probe_spec(code: Path, layer: Path) -> FunctionSpec:
    return FunctionSpec(
        name="probe",
        code_dir=code,
        handler="app.lambda_handler",
        timeout=10.0,
        memory=128,
        environment={"PATH": os.environ.get("PATH", "")},
        layer_dir=layer,
    )


def test_the_stack_gives_every_worker_this_checkouts_layer() -> None:
    assert LAYER_DIR == CHECKOUT / "layers" / "crypto"
    assert (LAYER_DIR / "sealgate" / "__init__.py").is_file()
    assert ROOT == CHECKOUT  # sealgate_local itself is this checkout's (tests/conftest.py puts it first)


def test_a_worker_loads_the_layer_it_is_given_and_reports_where_from(tmp_path: Path) -> None:
    copy, marker = copy_tree(tmp_path / "copy")
    code = copy / "functions" / "probe"
    code.mkdir()
    (code / "app.py").write_text(PROBE, encoding="utf-8")
    pool = WorkerPool(probe_spec(code, copy / "layers" / "crypto"), FunctionLogs().feed, size=1)
    try:
        answer = pool.invoke({})
        [origins] = pool.origins
    finally:
        pool.close()

    assert answer.ok, answer
    assert answer.result["marker"] == marker  # the copy's code ran, not the venv's install
    assert origins.sealgate == str((copy / "layers" / "crypto" / "sealgate").resolve())
    assert origins.function == str((code / "app.py").resolve())
    assert origins.harness == str((CHECKOUT / "local" / "sealgate_local").resolve())
    assert origins.outside(copy) == [f"harness: {origins.harness}"]  # this test's harness, by design
    # The check a test or the demo makes catches the mismatch: this is not the checkout's layer.
    assert [line.split(":")[0] for line in origins.outside(CHECKOUT)] == ["sealgate", "function"]


def test_a_worker_that_loads_another_sealgate_than_its_layer_fails_to_start(tmp_path: Path) -> None:
    code = tmp_path / "function"
    (code / "sealgate").mkdir(parents=True)  # a function folder shipping its own sealgate shadows the layer
    (code / "sealgate" / "__init__.py").write_text("", encoding="utf-8")
    (code / "app.py").write_text(PROBE, encoding="utf-8")
    pool = WorkerPool(probe_spec(code, LAYER_DIR), FunctionLogs().feed, size=1)
    try:
        with pytest.raises(WorkerFailed, match="loaded other code than its spec: sealgate from"):
            pool.start()
    finally:
        pool.close()


@pytest.mark.slow
def test_a_copy_of_the_tree_run_from_another_directory_runs_its_own_layer(tmp_path: Path) -> None:
    copy, marker = copy_tree(tmp_path / "copy")
    script = (
        "import json, sealgate\n"
        "from pathlib import Path\n"
        "from sealgate_local.stack import LocalStack\n"
        "with LocalStack(pool_size=1) as stack:\n"
        "    origins = {name: [o.__dict__ for o in found] for name, found in stack.origins().items()}\n"
        "    result = stack.invoke('encrypt', {'httpMethod': 'GET', 'path': '/nowhere', 'headers': {},\n"
        "                                      'requestContext': {'requestId': 'r'}})\n"
        "    print(json.dumps({'origins': origins, 'outside': stack.loaded_outside(Path.cwd()),\n"
        "                      'parent': getattr(sealgate, 'COPY_MARKER', None), 'ok': result.ok}))\n"
    )
    paths = os.pathsep.join([str(copy / "layers" / "crypto"), str(copy / "local")])

    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=copy,
        env={**os.environ, "PYTHONPATH": paths},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["parent"] == marker
    assert report["outside"] == []
    assert report["ok"] is True
    layer = str((copy / "layers" / "crypto" / "sealgate").resolve())
    every = [origin for found in report["origins"].values() for origin in found]
    assert every
    assert {origin["sealgate"] for origin in every} == {layer}
    assert all(Path(origin["function"]).is_relative_to(copy.resolve()) for origin in every)


def test_the_demo_started_in_a_copy_without_its_path_refuses_loudly(tmp_path: Path) -> None:
    copy, _ = copy_tree(tmp_path / "copy")
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}

    done = subprocess.run(
        [sys.executable, "-m", "sealgate_local", "demo"],
        cwd=copy,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 2, done.stdout + done.stderr
    assert "REFUSED: the demo would not run this checkout's code" in done.stderr
    assert "demo: sealgate_local:" in done.stderr
    assert "Starting the local stack" not in done.stdout  # refused before anything started
