"""cfn-lint and ``sam validate --lint`` from the tool environment (.tools/sam, created by ``make tools``)."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import require_oracle
from tests.template.conftest import ROOT, TEMPLATE

TOOLS = ROOT / ".tools" / "sam" / "bin"


@pytest.fixture(scope="module")
def tools() -> None:
    available = (TOOLS / "sam").is_file() and (TOOLS / "cfn-lint").is_file()
    require_oracle("aws-sam-cli", available, "run: make tools")


@pytest.mark.usefixtures("tools")
def test_cfn_lint_is_clean() -> None:
    result = subprocess.run(
        [str(TOOLS / "cfn-lint"), "--", str(TEMPLATE)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.usefixtures("tools")
def test_sam_validate_lint_is_clean() -> None:
    result = subprocess.run(
        ["bash", "scripts/sam.sh", "validate", "--lint", "--template-file", str(TEMPLATE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr
