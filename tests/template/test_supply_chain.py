"""The supply-chain side of the template and the layer (make audit runs the checkers themselves): the layer
builds from a lock file of exact, hashed versions that satisfies requirements.txt, and every check the
template skips or ignores says why."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from packaging.requirements import Requirement

from tests.template.conftest import ROOT, TEMPLATE, Template

LAYER = ROOT / "layers" / "crypto"
LOCK = LAYER / "requirements.lock"


def locked() -> dict[str, tuple[str, int]]:
    """name -> (pinned version, number of hashes), from the lock file."""
    found: dict[str, tuple[str, int]] = {}
    name = None
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        pinned = re.match(r"^([A-Za-z0-9._-]+)==(\S+) \\$", line)
        if pinned:
            name = canonical(pinned.group(1))
            found[name] = (pinned.group(2), 0)
        elif name and re.fullmatch(r"\s+--hash=sha256:[0-9a-f]{64}( \\)?", line):
            found[name] = (found[name][0], found[name][1] + 1)
        elif line.strip() and not line.lstrip().startswith("#"):
            raise AssertionError(f"unexpected line in {LOCK.name}: {line!r}")
    return found


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_layer_build_installs_the_lock_file_with_hashes_required() -> None:
    recipe = (LAYER / "Makefile").read_text(encoding="utf-8")
    install = re.search(r"pip install(?:[^\n]*\\\n)*[^\n]*", recipe)
    assert install, "no pip install in the layer's Makefile"
    command = install.group(0)
    assert "--require-hashes" in command
    assert '--requirement "$(HERE)requirements.lock"' in command
    assert "requirements.txt" not in command


def test_the_lock_pins_every_requirement_within_its_range_each_with_hashes() -> None:
    pins = locked()
    requirements = [
        Requirement(line.split("#", 1)[0].strip())
        for line in (LAYER / "requirements.txt").read_text(encoding="utf-8").splitlines()
        if line.split("#", 1)[0].strip()
    ]
    assert requirements
    for requirement in requirements:
        name = canonical(requirement.name)
        assert name in pins, f"{requirement.name} is not locked: run make lock"
        assert requirement.specifier.contains(pins[name][0], prereleases=True), (requirement, pins[name])
    # Their dependencies are locked too (--require-hashes installs nothing unlisted), each with its files'
    # hashes: arm64 wheels for the layer beside those of the machine that locked.
    assert {"cffi", "pycparser", "typing-extensions", "jmespath"} <= set(pins)
    for name, (_, hashes) in pins.items():
        assert hashes >= 1, name
    assert pins["cryptography"][1] >= 10  # one per platform wheel, arm64 among them


def test_every_checkov_skip_in_the_template_says_why(sam_template: Template) -> None:
    skips = [
        (name, skip)
        for name, resource in sam_template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for name, skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), name
        assert len(skip.get("comment", "").split()) >= 8, (name, skip["id"])


def test_every_ignored_cfn_lint_rule_says_why_in_a_comment_above_it() -> None:
    lines = TEMPLATE.read_text(encoding="utf-8").splitlines()
    ignores = [number for number, line in enumerate(lines) if line.strip() == "ignore_checks:"]
    assert ignores
    for number in ignores:
        assert lines[number - 1].strip().startswith("# "), f"template.yaml line {number + 1}"


def test_every_bandit_check_skipped_everywhere_says_why() -> None:
    path = ROOT / "scripts" / "bandit.yaml"
    skips = yaml.safe_load(path.read_text(encoding="utf-8"))["skips"]
    lines = path.read_text(encoding="utf-8").splitlines()
    assert skips
    for test_id in skips:
        (number,) = [i for i, line in enumerate(lines) if line.strip() == f"- {test_id}"]
        assert lines[number - 1].strip().startswith("#"), test_id
    # The shell-injection checks stay on.
    assert not {"B602", "B604", "B605", "B606", "B607"} & set(skips)


def test_the_audit_tools_are_pinned() -> None:
    script = (ROOT / "scripts" / "audit.sh").read_text(encoding="utf-8")
    for tool in ("CHECKOV", "CFN_LINT_SERVERLESS", "BANDIT", "PIP_AUDIT", "PIP_TOOLS", "SAM_TRANSLATOR"):
        assert re.search(rf"^{tool}_VERSION=\d+(\.\d+)+$", script, re.MULTILINE), tool
    assert Path(ROOT / "Makefile").read_text(encoding="utf-8").count("scripts/audit.sh") >= 3
