"""``make audit``: the supply-chain and policy checks, each summarised on one line; exit 1 when any fails.

Runs in .tools/audit/ (scripts/audit.sh --install), never in .venv: the checkers pin their own dependencies.

- checkov on the template *after* the SAM transform (what CloudFormation deploys: roles, permissions, stage),
  translated here offline with aws-sam-translator. A check that does not apply is skipped in template.yaml with a
  reason (``Metadata: checkov: skip: [{id, comment}]``); a skip without a reason fails. SAM copies a function's
  or an API's Metadata to the function or REST API it generates but not to the role, permissions or stage it
  generates with it: this script gives those the same skips (check ids are per resource type, so a skip only
  ever lands where it applies).
- cfn-lint with the serverless rules (cfn-lint-serverless) on template.yaml.
- bandit on layers/, functions/, local/ and scripts/; a ``# nosec`` carries its reason on the same line.
- pip-audit on layers/crypto/requirements.lock (exact versions with hashes: nothing is resolved or installed),
  against PyPI's vulnerability data; and that the lock still satisfies requirements.txt, every pin hashed.

``--json FILE`` writes the figures (per tool: passed, failed, skipped with reasons, findings, seconds).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
REQUIREMENTS = ROOT / "layers" / "crypto" / "requirements.txt"
LOCK = ROOT / "layers" / "crypto" / "requirements.lock"
CODE = ("layers", "functions", "local", "scripts")
BIN = Path(sys.executable).parent


@dataclass
class Outcome:
    """What one checker found."""

    tool: str
    passed: int = 0
    failed: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failed == 0 and not self.findings

    def line(self) -> str:
        parts = [f"{self.passed} passed", f"{self.failed} failed"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped with a reason")
        parts.extend(self.notes)
        if self.unchecked:
            parts.append(f"{len(self.unchecked)} not checkable here (see the report)")
        return f"{'ok  ' if self.ok else 'FAIL'} {self.tool:<10} {', '.join(parts)} ({self.seconds:.1f} s)"


def run(command: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, **options)


# --- checkov on the transformed template ----------------------------------------------------------------------


def transformed(template: dict[str, Any]) -> dict[str, Any]:
    """``template`` (SAM) as CloudFormation gets it, with the SAM resources' checkov skips on what they generate."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    source = copy.deepcopy(template)
    for name, resource in source["Resources"].items():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):  # local folders: sam package would upload them
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://sealgate-audit/{name}.zip"
    translator = Translator(
        managed_policy_map=None, sam_parser=Parser(), boto_session=boto3.Session(region_name="us-east-1")
    )
    result: dict[str, Any] = translator.translate(source, parameter_values={}, get_managed_policy_map=dict)
    written = set(template["Resources"])
    for name, resource in template["Resources"].items():
        skips = resource.get("Metadata", {}).get("checkov")
        if not resource["Type"].startswith("AWS::Serverless::") or not skips:
            continue
        for generated, output in result["Resources"].items():
            if generated.startswith(name) and generated not in written:
                output.setdefault("Metadata", {}).setdefault("checkov", copy.deepcopy(skips))
    return result


def checkov() -> Outcome:
    from samtranslator.yaml_helper import yaml_parse

    outcome = Outcome("checkov")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "template.json"
        path.write_text(
            json.dumps(transformed(yaml_parse(TEMPLATE.read_text(encoding="utf-8")))), encoding="utf-8"
        )
        answer = run(
            [
                str(BIN / "checkov"),
                "--file",
                str(path),
                "--framework",
                "cloudformation",
                "--output",
                "json",
                "--compact",
                "--skip-download",
            ],
            env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": folder, "BC_SKIP_MAPPING": "TRUE"},
        )
    try:
        report = json.loads(answer.stdout)
    except ValueError:
        outcome.failed = 1
        outcome.findings.append(f"checkov did not answer JSON: {answer.stderr.strip()[-500:]}")
        return outcome
    if isinstance(report, list):  # one report per framework
        (report,) = report
    if report.get("summary", {}).get("parsing_errors"):
        outcome.findings.append("checkov could not parse the transformed template")
    results = report.get("results", {})
    outcome.passed = len(results.get("passed_checks", []))
    for check in results.get("failed_checks", []):
        outcome.failed += 1
        outcome.findings.append(f"{check['check_id']} {check['resource']}: {check['check_name']}")
    for check in results.get("skipped_checks", []):
        reason = (check.get("check_result") or {}).get("suppress_comment") or ""
        outcome.skipped.append({"id": check["check_id"], "resource": check["resource"], "reason": reason})
        if not reason.strip() or reason.strip() == "No comment provided":
            outcome.findings.append(f"{check['check_id']} {check['resource']}: skipped without a reason")
    return outcome


# --- cfn-lint with the serverless rules ---------------------------------------------------------------------------


def cfn_lint() -> Outcome:
    outcome = Outcome("cfn-lint")
    answer = run(
        [
            str(BIN / "cfn-lint"),
            "--append-rules",
            "cfn_lint_serverless.rules",
            "--format",
            "json",
            "--",
            str(TEMPLATE),
        ]
    )
    try:
        matches = json.loads(answer.stdout or "[]")
    except ValueError:
        matches = None
    if matches is None or (answer.returncode != 0 and not matches):
        outcome.failed = 1
        outcome.findings.append(f"cfn-lint failed to run: {(answer.stdout + answer.stderr).strip()[-500:]}")
        return outcome
    for match in matches:
        start = match.get("Location", {}).get("Start", {})
        outcome.findings.append(f"{match['Rule']['Id']} line {start.get('LineNumber')}: {match['Message']}")
    outcome.failed = len(matches)
    rules = run([str(BIN / "cfn-lint"), "--append-rules", "cfn_lint_serverless.rules", "--list-rules"])
    serverless = len(re.findall(r"^[EWI]S\d{4}", rules.stdout, re.MULTILINE))
    ignored = len(re.findall(r"ignore_checks", TEMPLATE.read_text(encoding="utf-8")))
    outcome.notes.append(f"{serverless} serverless rules loaded")
    if ignored:
        outcome.notes.append(f"{ignored} resource(s) ignore a rule, each with a reason")
    if serverless == 0:
        outcome.findings.append("the serverless rules did not load")
    total = len(re.findall(r"^[EWI]S?\d{4}", rules.stdout, re.MULTILINE))
    outcome.passed = total - len({match["Rule"]["Id"] for match in matches})
    return outcome


# --- bandit -------------------------------------------------------------------------------------------------------


NOQA = re.compile(r"#\s*noqa:\s*(?P<codes>[A-Z]+\d+(?:\s*,\s*[A-Z]+\d+)*)(?P<rest>.*)")
NOSEC = re.compile(r"#\s*nosec\b(?P<rest>.*)")


def reasoned(
    lines: list[str], number: int, pattern: re.Pattern[str], test_id: str | None = None
) -> bool | None:
    """Whether line ``number`` (1-based) suppresses with ``pattern`` (for ``test_id``, if given) and says why:
    words in its comment besides the codes, or a comment line right above. None: it does not suppress."""
    line = lines[number - 1]
    found = pattern.search(line)
    if found is None:
        return None
    if test_id is not None and f"S{test_id[1:]}" not in re.split(r"[\s,]+", found["codes"]):
        return None
    comment = line[line.index("#") :]
    words = re.sub(r"noqa:\s*[A-Z0-9, ]+|nosec\b[ B0-9,]*|#", " ", comment)
    if re.search(r"[a-z]{3}", words):
        return True
    # A comment above the line, or above a run of lines suppressed alike (three steps of one derivation).
    above = number - 1
    while above >= 1 and pattern.search(lines[above - 1]):
        above -= 1
    return above >= 1 and lines[above - 1].strip().startswith("#")


def bandit() -> Outcome:
    outcome = Outcome("bandit")
    answer = run(
        [
            str(BIN / "bandit"),
            "--configfile",
            str(ROOT / "scripts" / "bandit.yaml"),
            "--recursive",
            "--format",
            "json",
            "--quiet",
            "--exclude",
            "*/__pycache__/*",
            *CODE,
        ]
    )
    try:
        report = json.loads(answer.stdout)
    except ValueError:
        outcome.failed = 1
        outcome.findings.append(f"bandit did not answer JSON: {answer.stderr.strip()[-500:]}")
        return outcome
    sources: dict[str, list[str]] = {}
    bridged = 0
    failing: set[str] = set()
    for issue in report.get("results", []):
        name = issue["filename"]
        lines = sources.setdefault(name, (ROOT / name).read_text(encoding="utf-8").splitlines())
        if reasoned(lines, issue["line_number"], NOQA, issue["test_id"]):
            bridged += 1
            continue
        failing.add(name)
        outcome.findings.append(
            f"{issue['test_id']} {issue['filename']}:{issue['line_number']} ({issue['issue_severity']}): "
            f"{issue['issue_text']}"
        )
    outcome.failed = len(outcome.findings)
    metrics = {name: value for name, value in report.get("metrics", {}).items() if name != "_totals"}
    outcome.passed = len(metrics) - len(failing)
    nosec = 0
    for name in metrics:
        lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if NOSEC.search(line):
                nosec += 1
                if not reasoned(lines, number, NOSEC):
                    outcome.findings.append(f"{name}:{number}: nosec without a reason")
    totals = report.get("metrics", {}).get("_totals", {})
    outcome.notes.append(f"{len(metrics)} files, {totals.get('loc', 0)} lines")
    outcome.notes.append(
        f"{bridged} suppressed by the line's ruff noqa, {nosec} by nosec, each with a reason"
    )
    outcome.notes.append("skipped everywhere: B101, B404, B603 (scripts/bandit.yaml says why)")
    for error in report.get("errors", []):
        outcome.findings.append(f"could not scan {error.get('filename')}: {error.get('reason')}")
    return outcome


# --- the lock file and pip-audit ----------------------------------------------------------------------------------


def pins(text: str) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of a pip-compile lock file."""
    found: dict[str, tuple[str, int]] = {}
    current = None
    for line in text.splitlines():
        pinned = re.match(r"^([A-Za-z0-9._-]+)==([^\s\\;]+)", line)
        if pinned:
            current = canonical(pinned.group(1))
            found[current] = (pinned.group(2), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = found[current]
            found[current] = (version, hashes + 1)
    return found


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_matches_requirements() -> list[str]:
    """What is wrong with the lock: a requirement it lacks or pins outside its range, a pin without hashes."""
    from packaging.requirements import Requirement

    locked = pins(LOCK.read_text(encoding="utf-8"))
    problems = [f"{name}=={version} has no hash" for name, (version, hashes) in locked.items() if hashes == 0]
    for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        requirement = Requirement(text)
        pinned = locked.get(canonical(requirement.name))
        if pinned is None:
            problems.append(f"{requirement.name} is not in the lock: run make lock")
        elif not requirement.specifier.contains(pinned[0], prereleases=True):
            problems.append(
                f"{requirement.name}=={pinned[0]} is outside {requirement.specifier}: run make lock"
            )
    return problems


def pip_audit() -> Outcome:
    outcome = Outcome("pip-audit")
    outcome.findings.extend(lock_matches_requirements())
    answer = run(
        [
            str(BIN / "pip-audit"),
            "--requirement",
            str(LOCK),
            "--require-hashes",
            "--disable-pip",
            "--progress-spinner",
            "off",
            "--format",
            "json",
        ]
    )
    try:
        report = json.loads(answer.stdout)
    except ValueError:
        outcome.failed = 1
        outcome.findings.append(f"pip-audit could not check the lock: {answer.stderr.strip()[-500:]}")
        return outcome
    dependencies = report.get("dependencies", [])
    locked = pins(LOCK.read_text(encoding="utf-8"))
    for index, dependency in enumerate(dependencies):
        if "skip_reason" not in dependency:
            continue
        version = locked.get(canonical(dependency["name"]), ("", 0))[0]
        checked, why = latest_release_vulnerabilities(dependency["name"], version)
        if checked is None:
            # Not a vulnerability, and not something a commit here can fix: a registry that serves no
            # per-version data cannot speak for an older pin once upstream releases. Reported, not failed,
            # so that CI does not turn red on an upstream release; `make lock` brings the pin up to date.
            outcome.unchecked.append(f"{dependency['name']}=={version}: {why}")
        else:
            dependencies[index] = {"name": dependency["name"], "version": version, "vulns": checked}
            if why not in outcome.notes:
                outcome.notes.append(why)
    for dependency in dependencies:
        for vulnerability in dependency.get("vulns", []):
            fixed = ", ".join(vulnerability.get("fix_versions", [])) or "none yet"
            outcome.findings.append(
                f"{dependency['name']}=={dependency['version']}: {vulnerability['id']} (fixed in {fixed})"
            )
    vulnerable = {d["name"] for d in dependencies if d.get("vulns")}
    outcome.failed = len(vulnerable)
    outcome.passed = len(dependencies) - len(vulnerable)
    outcome.notes.append(f"{sum(len(d.get('vulns', [])) for d in dependencies)} known vulnerabilities")
    outcome.notes.append(f"{len(pins(LOCK.read_text(encoding='utf-8')))} locked packages, all hashed")
    return outcome


def latest_release_vulnerabilities(name: str, version: str) -> tuple[list[dict[str, Any]] | None, str]:
    """pip-audit's own PyPI query for ``name==version``, through the project's document when the registry serves
    no per-version one (some mirrors do not): that document carries the vulnerabilities of the latest release,
    so it answers only when ``version`` is the latest. (vulnerabilities or None, what was done or why not)."""
    from packaging.version import Version
    from pip_audit._service.interface import ResolvedDependency, SkippedDependency
    from pip_audit._service.pypi import PyPIService

    service = PyPIService(timeout=30)
    direct = service.session.get
    latest: dict[str, str] = {}

    def get(url: str, **options: Any) -> Any:
        response = direct(url=url, **options)
        if response.status_code != 404:
            return response
        project = direct(url=re.sub(r"/[^/]+/json$", "/json", url), **options)
        if project.ok:
            latest["version"] = project.json()["info"]["version"]
            if latest["version"] == version:
                return project
        return response

    service.session.get = get  # type: ignore[method-assign]
    try:
        found, results = service.query(ResolvedDependency(name=name, version=Version(version)))
    except Exception as error:  # any failure leaves the dependency unchecked, and says so
        return None, f"the registry did not answer ({type(error).__name__})"
    if isinstance(found, SkippedDependency):
        if "version" in latest:
            return (
                None,
                f"the latest release is {latest['version']}; this registry has data for that one only: make lock",
            )
        return None, found.skip_reason
    vulnerabilities = [
        {
            "id": result.id,
            "fix_versions": [str(v) for v in result.fix_versions],
            "aliases": sorted(result.aliases),
        }
        for result in results
    ]
    return vulnerabilities, "checked as the latest releases (this registry serves no per-version data)"


CHECKS: dict[str, Callable[[], Outcome]] = {
    "checkov": checkov,
    "cfn-lint": cfn_lint,
    "bandit": bandit,
    "pip-audit": pip_audit,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make audit", description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--only", choices=sorted(CHECKS), action="append", help="run only this check")
    parser.add_argument("--verbose", action="store_true", help="list the skips with their reasons too")
    args = parser.parse_args(argv)
    started = time.monotonic()
    outcomes = []
    for name, check in CHECKS.items():
        if args.only and name not in args.only:
            continue
        began = time.monotonic()
        outcome = check()
        outcome.seconds = time.monotonic() - began
        outcomes.append(outcome)
        print(outcome.line(), flush=True)
        for finding in outcome.findings:
            print(f"       {finding}")
        for unchecked in outcome.unchecked:
            print(f"       not checked: {unchecked}")
        if args.verbose:
            for skip in outcome.skipped:
                print(f"       skipped {skip['id']} on {skip['resource']}: {skip['reason']}")
    total = time.monotonic() - started
    failed = [outcome.tool for outcome in outcomes if not outcome.ok]
    print(f"audit: {'FAILED: ' + ', '.join(failed) if failed else 'all checks passed'} in {total:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        figures = {
            "ok": not failed,
            "seconds": round(total, 1),
            "tools": {o.tool: {**asdict(o), "ok": o.ok, "seconds": round(o.seconds, 1)} for o in outcomes},
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
