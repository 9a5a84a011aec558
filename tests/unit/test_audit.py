"""scripts/audit.py (make audit) without its tools: what it hands checkov (the transformed template, with the SAM
resources' skips on what they generate), how it reads the lock file, and which suppressions it accepts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit", ROOT / "scripts" / "audit.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["audit"] = module
    spec.loader.exec_module(module)
    return module


def test_skips_reach_the_resources_sam_generates_and_only_those(audit: ModuleType) -> None:
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse((ROOT / "template.yaml").read_text(encoding="utf-8"))
    result = audit.transformed(template)["Resources"]

    def skipped(name: str) -> set[str]:
        return {skip["id"] for skip in result[name].get("Metadata", {}).get("checkov", {}).get("skip", [])}

    # The API's skip is on the stage SAM generates from it (caching is a stage setting).
    assert "CKV_AWS_120" in skipped("SealgateApiStage")
    assert "CKV_AWS_120" in skipped("SealgateApi")
    # A function's skips are on the function, and on the role SAM made for it, not on its own log group or alarm
    # (resources the template writes itself, whose logical ids merely start alike).
    assert {"CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"} <= skipped("EncryptFunction")
    assert "CKV_AWS_117" in skipped("EncryptFunctionRole")
    assert skipped("EncryptFunctionLogGroup") == set()
    assert skipped("EncryptFunctionErrorsAlarm") == set()
    # Local code folders became S3 locations, as sam package would upload them.
    assert result["EncryptFunction"]["Properties"]["Code"]["S3Bucket"] == "sealgate-audit"


def test_the_lock_is_read_pin_by_pin_with_its_hashes(audit: ModuleType) -> None:
    pins = audit.pins((ROOT / "layers" / "crypto" / "requirements.lock").read_text(encoding="utf-8"))
    assert {"cryptography", "jwcrypto", "aws-lambda-powertools", "fastjsonschema", "urllib3"} <= set(pins)
    assert all(hashes > 0 for _, hashes in pins.values())
    assert audit.lock_matches_requirements() == []
    text = (
        "foo-bar==1.2 \\\n    --hash=sha256:" + "a" * 64 + " \\\n    --hash=sha256:" + "b" * 64 + "\nbaz==3\n"
    )
    assert audit.pins(text) == {"foo-bar": ("1.2", 2), "baz": ("3", 0)}


@pytest.mark.parametrize(
    ("lines", "test_id", "accepted"),
    [
        (["x = md5(a)  # noqa: S324 - the format's own derivation"], "B324", True),
        (
            [
                "# the format derives its key with MD5",
                "d1 = md5(a)  # noqa: S324",
                "d2 = md5(b)  # noqa: S324",
            ],
            "B324",
            True,
        ),
        (["d1 = md5(a)  # noqa: S324"], "B324", False),  # no reason anywhere
        (["x = md5(a)  # noqa: S105 - another check"], "B324", None),  # suppresses a different check
        (["x = md5(a)"], "B324", None),
    ],
)
def test_a_ruff_suppression_counts_only_for_its_own_check_and_with_a_reason(
    audit: ModuleType, lines: list[str], test_id: str, accepted: bool | None
) -> None:
    assert audit.reasoned(lines, len(lines), audit.NOQA, test_id) is accepted


@pytest.mark.parametrize(
    ("line", "accepted"),
    [
        ('URL = "x"  # a fixed loopback URL  # nosec B310', True),
        ('URL = "x"  # nosec B310', False),
        ('URL = "x"  # nosec', False),
    ],
)
def test_a_nosec_needs_a_reason(audit: ModuleType, line: str, accepted: bool) -> None:
    assert audit.reasoned(["y = 1", line], 2, audit.NOSEC) is accepted
