"""The demo flows against ``sam build``'s artifacts: the functions from ``.aws-sam/build/<Function>`` and the
built layer's ``sealgate`` package, so a file missing from the layer or a handler path wrong in the template
fails here. Needs the SAM tools (``make tools``): fails in CI without them, skips elsewhere."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from sealgate_local.demo import Demo
from sealgate_local.stack import BUILD_DIR, ROOT, LocalStack
from tests.conftest import require_oracle

pytestmark = pytest.mark.slow

SAM = ROOT / ".tools" / "sam" / "bin" / "sam"


@pytest.fixture(scope="module")
def built_stack() -> Iterator[LocalStack]:
    require_oracle("aws-sam-cli", SAM.is_file(), "run: make tools")
    build = subprocess.run(
        ["bash", "scripts/sam.sh", "build"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    with LocalStack(built=True) as running:
        yield running


def test_functions_run_from_the_build_with_the_built_layer(built_stack: LocalStack) -> None:
    layer = (BUILD_DIR / "CryptoLayer" / "python" / "sealgate").resolve()
    for name, pool in built_stack.pools.items():
        assert pool.spec.code_dir == BUILD_DIR / built_stack.resources.functions[name].logical_id
        assert pool.sealgate_origins == {str(layer)}


def test_every_demo_flow_is_verified_against_the_built_artifacts(built_stack: LocalStack) -> None:
    results = Demo(built_stack).run()

    profiles = built_stack.resources.profiles
    assert {r.partner for r in results} == set(profiles)
    assert {r.partner for r in results if "/v1/forward/" in r.route} == set(profiles)
    assert [r for r in results if not r.verified or r.delivered is False] == []
