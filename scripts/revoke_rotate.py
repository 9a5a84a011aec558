"""Incident response: revoke one partner's credentials and rotate them, at once.

    .venv/bin/python scripts/revoke_rotate.py PARTNER --stack STACK [--values-file FILE] [--keep FIELD ...]
        [--partner-keys-out FILE] [--function NAME ...] [--dry-run] [--json]

What it does, in this order (AWS credentials and region from your profile, as the AWS CLI uses them):

1. Builds the partner's new secret, field by field, from exactly one source each:
   - the protection's key slots (``profile.protection.key_fields``): fresh material from the cipher's
     ``keygen`` in the scheme registry (:mod:`sealgate.schemes`), unless the values file supplies them (a
     partner that issues its own key: Infosimples' and PayKun's dashboards, dLocal's JWE public key);
   - ``--values-file``: a JSON object of new values the partner issued (API keys, logins, trans keys), read
     from a file so that no value reaches the shell's history or the process list;
   - ``--keep FIELD``: the current value, for identifiers that are not credentials (Netcore's asset id).
   A field of the profile's ``secret_fields`` with no source, or with two, is refused before anything changes.
   The new key material must work with the partner's cipher (a probe is encrypted, and decrypted again where
   Sealgate holds what decrypts) and differ from the current material.
2. Puts it as the secret's new ``AWSCURRENT`` (Secrets Manager moves ``AWSPREVIOUS`` onto the old version).
3. Revokes every earlier version: removes ``AWSPREVIOUS`` (and ``AWSPENDING``) from it, so that
   :meth:`sealgate.partner_keys.PartnerSecrets.try_each` no longer falls back to it: a webhook or token made
   with the old material is refused from then on. (Queued outbound messages that name their key version are
   re-protected under the new key before they are sent; the old version's text stays fetchable by id, as
   Secrets Manager keeps deprecated versions, but no stage points at it.)
4. Flushes every cache of the old material: sets ``SEALGATE_KEYS_REVOKED_AT`` in the environment of each
   function that serves the partner (the stack's, :func:`sealgate.partners.served_by`). A configuration change
   retires every execution environment: the next invocations start cold and fetch the secret afresh, whatever
   their cache age (and the secrets extension's cache goes with them). An alias on a published version
   (SnapStart) is moved to a version published from the new configuration. A later ``sam deploy`` drops the
   variable again (one more cold start, harmless).
5. Prints what changed and what the operator must hand to the partner: field names, the secret's name and
   version, and the command that reads them; never a value. Material only the partner keeps (a generated
   private key) goes to ``--partner-keys-out`` (created with mode 0600; it must not exist yet).

Exit status: 0 done, 2 refused before any change, 1 an AWS call failed (the output says how far it got).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sealgate.errors import SealgateError
from sealgate.partners import Function, Profile, load_profiles, served_by

CURRENT = "AWSCURRENT"
REVOKED_STAGES = ("AWSPREVIOUS", "AWSPENDING")
#: the template's logical id of each function, by the name served_by knows it by
LOGICAL_IDS: dict[Function, str] = {
    "encrypt": "EncryptFunction",
    "sign": "SignFunction",
    "forward": "ForwardFunction",
}
REVOKED_AT = "SEALGATE_KEYS_REVOKED_AT"
PROBE = b"sealgate revoke-rotate probe"
UPDATE_TIMEOUT_SECONDS = 120.0


class Refused(Exception):
    """The request cannot be carried out; nothing was changed (the message says why, never a value)."""


@dataclass
class NewSecret:
    """The new secret's fields and where each came from."""

    value: dict[str, str]
    generated: list[str] = field(default_factory=list)
    supplied: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    partner_side: dict[str, str] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"NewSecret(fields={sorted(self.value)}, generated={self.generated})"


# --- the new secret ---------------------------------------------------------------------------------------------


def read_values_file(path: Path | None) -> dict[str, str]:
    """The operator's new values: a JSON object of non-empty strings (a message names a field, never a value)."""
    if path is None:
        return {}
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise Refused(f"--values-file {path}: not a readable JSON object ({type(error).__name__})") from None
    if not isinstance(values, dict):
        raise Refused(f"--values-file {path}: not a JSON object")
    for name, value in values.items():
        if not isinstance(value, str) or not value:
            raise Refused(f"--values-file {path}: field {name!r} is not a non-empty string")
    return values


def build_secret(
    profile: Profile, current: Mapping[str, str], supplied: Mapping[str, str], keep: Sequence[str]
) -> NewSecret:
    """Every field of ``profile.secret_fields`` from exactly one source (see the module docstring)."""
    fields = set(profile.secret_fields)
    for name in [*supplied, *keep]:
        if name not in fields:
            raise Refused(
                f"{name!r} is not a field of {profile.name}'s secret (its fields: {', '.join(profile.secret_fields)})"
            )
    both = sorted(set(supplied) & set(keep))
    if both:
        raise Refused(f"field(s) {', '.join(both)} both supplied and kept: choose one")
    for name in keep:
        if not current.get(name):
            raise Refused(f"--keep {name}: the current secret has no value for it")
    protection = profile.protection
    slots = {slot.name: slot for slot in protection.cipher.key_slots}
    key_fields = {secret_field: slots[slot] for slot, secret_field in protection.key_fields.items()}
    new = NewSecret(value={})
    to_generate = [name for name in key_fields if name not in supplied and name not in keep]
    if to_generate:
        material = protection.cipher.keygen(protection.cipher_options)
        stored = {slot.generated for slot in protection.cipher.key_slots}
        for name in to_generate:
            new.value[name] = material[key_fields[name].generated]
            new.generated.append(name)
        scheme = protection.cipher.name.replace("-", "_")
        new.partner_side = {
            f"{scheme}_{name}": value for name, value in material.items() if name not in stored
        }
    for name, value in supplied.items():
        new.value[name] = value
        new.supplied.append(name)
    for name in keep:
        new.value[name] = current[name]
        new.kept.append(name)
    missing = [name for name in profile.secret_fields if name not in new.value]
    if missing:
        raise Refused(
            f"no new value for {', '.join(missing)}: put the partner's new value(s) in --values-file, or "
            "--keep a field that is not a credential"
        )
    new.dropped = sorted(set(current) - fields)
    unchanged = [name for name in new.generated + new.supplied if current.get(name) == new.value[name]]
    if unchanged:
        raise Refused(f"the new value of {', '.join(unchanged)} equals the current one: that revokes nothing")
    probe(profile, new.value)
    return new


def probe(profile: Profile, secret: Mapping[str, str]) -> None:
    """The cipher accepts the new key material: it encrypts a probe, and decrypts it back where it can."""
    protection = profile.protection
    cipher, options = protection.cipher, protection.cipher_options
    try:
        token = cipher.encrypt(PROBE, protection.keys(secret, decrypting=False), options)
        if (
            protection.symmetric
            and cipher.decrypt(token, protection.keys(secret, decrypting=True), options) != PROBE
        ):
            raise Refused(f"the new {protection.scheme} key material does not decrypt what it encrypts")
    except (SealgateError, ValueError, TypeError, KeyError) as error:
        raise Refused(
            f"the new key material does not work with {protection.scheme} ({type(error).__name__})"
        ) from None


# --- AWS ----------------------------------------------------------------------------------------------------------


@dataclass
class Target:
    """Where the partner lives in one deployment: its secret and the functions that serve it."""

    secret_name: str
    functions: dict[str, str]  # physical name -> logical id (or the name given)


def find_target(
    session: Any, profile: Profile, profiles: Mapping[str, Profile], args: argparse.Namespace
) -> Target:
    lambdas = session.client("lambda")
    functions: dict[str, str] = {}
    if args.function:
        functions = {name: name for name in args.function}
    else:
        stack = session.client("cloudformation")
        for short, logical_id in LOGICAL_IDS.items():
            if profile.name not in served_by(short, profiles):
                continue
            answer = stack.describe_stack_resource(StackName=args.stack, LogicalResourceId=logical_id)
            functions[answer["StackResourceDetail"]["PhysicalResourceId"]] = logical_id
    prefixes = {
        lambdas.get_function_configuration(FunctionName=name)
        .get("Environment", {})
        .get("Variables", {})
        .get("SEALGATE_SECRET_PREFIX", "")
        for name in functions
    }
    if args.prefix:
        prefixes = {args.prefix}
    if len(prefixes) != 1 or not next(iter(prefixes)):
        raise Refused(f"the functions disagree on SEALGATE_SECRET_PREFIX ({sorted(prefixes)}): pass --prefix")
    return Target(secret_name=next(iter(prefixes)) + profile.name, functions=functions)


def versions(secrets: Any, name: str) -> dict[str, list[str]]:
    """Version id -> its staging labels."""
    stages: dict[str, list[str]] = secrets.describe_secret(SecretId=name).get("VersionIdsToStages", {})
    return stages


def current_fields(secrets: Any, name: str) -> tuple[dict[str, str], str]:
    answer = secrets.get_secret_value(SecretId=name, VersionStage=CURRENT)
    try:
        value = json.loads(answer.get("SecretString", ""))
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise Refused(f"the current version of {name} is not a JSON object")
    return {k: v for k, v in value.items() if isinstance(v, str)}, str(answer["VersionId"])


def revoke_earlier_versions(secrets: Any, name: str, new_version: str) -> list[dict[str, Any]]:
    """Remove AWSPREVIOUS and AWSPENDING from every version but ``new_version``; what each version lost."""
    revoked = []
    for version_id, stages in versions(secrets, name).items():
        if version_id == new_version:
            continue
        removed = [stage for stage in stages if stage in REVOKED_STAGES]
        for stage in removed:
            secrets.update_secret_version_stage(
                SecretId=name, VersionStage=stage, RemoveFromVersionId=version_id
            )
        revoked.append(
            {"version": version_id, "removed": removed, "left": [s for s in stages if s not in removed]}
        )
    return revoked


def restart(lambdas: Any, function: str, stamp: str) -> dict[str, Any]:
    """Retire the function's execution environments (a configuration change), and move its aliases on."""
    configuration = lambdas.get_function_configuration(FunctionName=function)
    variables = dict(configuration.get("Environment", {}).get("Variables", {}))
    variables[REVOKED_AT] = stamp
    lambdas.update_function_configuration(FunctionName=function, Environment={"Variables": variables})
    wait_until_updated(lambdas, function)
    moved = []
    aliases = lambdas.list_aliases(FunctionName=function).get("Aliases", [])
    published = [alias for alias in aliases if alias.get("FunctionVersion") not in (None, "$LATEST")]
    if published:
        published_as = lambdas.publish_version(FunctionName=function, Description=f"keys revoked at {stamp}")
        version = published_as["Version"]
        # SnapStart snapshots the new version's init first: the alias moves once it can serve.
        wait_until_updated(lambdas, function, qualifier=version)
        for alias in published:
            lambdas.update_alias(FunctionName=function, Name=alias["Name"], FunctionVersion=version)
            moved.append({"alias": alias["Name"], "from": alias["FunctionVersion"], "to": version})
    return {"function": function, "aliases": moved}


def wait_until_updated(lambdas: Any, function: str, qualifier: str = "$LATEST") -> None:
    """Until the function (or its published version) has taken its new configuration and can serve."""
    deadline = time.monotonic() + UPDATE_TIMEOUT_SECONDS
    while True:
        configuration = lambdas.get_function_configuration(FunctionName=function, Qualifier=qualifier)
        state = configuration.get("State", "Active")
        status = configuration.get("LastUpdateStatus", "Successful")
        if state == "Active" and status == "Successful":
            return
        if "Failed" in (state, status) or time.monotonic() > deadline:
            raise RuntimeError(f"{function}:{qualifier} did not become active ({state}, {status})")
        time.sleep(1)


def write_partner_keys(path: Path, material: Mapping[str, str]) -> None:
    """Material only the partner keeps, in a new file only its owner can read."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(dict(material), handle, indent=2)
        handle.write("\n")


# --- the command ------------------------------------------------------------------------------------------------


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="revoke_rotate.py", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("partner", help="the partner whose credentials are revoked (a profile name)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--stack", help="the deployed stack (e.g. sealgate-dev): its functions serving the partner"
    )
    where.add_argument(
        "--function", action="append", help="a function to restart (repeat); instead of --stack"
    )
    parser.add_argument(
        "--prefix", help="the secrets prefix (default: the functions' SEALGATE_SECRET_PREFIX)"
    )
    parser.add_argument("--values-file", type=Path, help="JSON object of the partner's new values, by field")
    parser.add_argument(
        "--keep", action="append", default=[], help="a field whose current value stays (repeat)"
    )
    parser.add_argument("--partner-keys-out", type=Path, help="new file for material only the partner keeps")
    parser.add_argument("--profiles-dir", help="a folder of extra partner profiles")
    parser.add_argument(
        "--dry-run", action="store_true", help="check and say what would change; change nothing"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, session: Any = None) -> int:
    args = parse_arguments(argv)
    report: dict[str, Any] = {"partner": args.partner, "done": []}
    try:
        profiles = load_profiles((args.profiles_dir,) if args.profiles_dir else ())
        profile = profiles.get(args.partner)
        if profile is None:
            raise Refused(f"no partner {args.partner!r} (known: {', '.join(sorted(profiles))})")
        if session is None:
            import boto3

            session = boto3.Session()
        target = find_target(session, profile, profiles, args)
        secrets = session.client("secretsmanager")
        report.update(secret=target.secret_name, functions=sorted(target.functions))
        current, old_version = current_fields(secrets, target.secret_name)
        new = build_secret(profile, current, read_values_file(args.values_file), args.keep)
        if new.partner_side and args.partner_keys_out is None:
            raise Refused(
                f"{profile.scheme} generates material only the partner keeps "
                f"({', '.join(sorted(new.partner_side))}): pass --partner-keys-out FILE, or supply "
                f"{', '.join(new.generated)} in --values-file"
            )
        if args.partner_keys_out is not None and args.partner_keys_out.exists():
            raise Refused(f"--partner-keys-out {args.partner_keys_out} exists already: choose a new file")
        report.update(
            generated=new.generated,
            supplied=new.supplied,
            kept=new.kept,
            dropped=new.dropped,
            previous=old_version,
            # Symmetric: the partner needs the generated key itself. Public-key: the partner needs the private
            # half (the file), the secret keeps the public one.
            hand_over=new.generated if profile.protection.symmetric else [],
        )
        if args.dry_run:
            report["dry_run"] = True
            return finish(report, args, 0)
        if new.partner_side and args.partner_keys_out is not None:
            write_partner_keys(args.partner_keys_out, new.partner_side)
            report["partner_keys_file"] = str(args.partner_keys_out)
        put = secrets.put_secret_value(
            SecretId=target.secret_name,
            SecretString=json.dumps(new.value),
            ClientRequestToken=str(uuid.uuid4()),
            VersionStages=[CURRENT],
        )
        report["version"] = put["VersionId"]
        report["done"].append("rotated")
        report["revoked"] = revoke_earlier_versions(secrets, target.secret_name, put["VersionId"])
        report["done"].append("revoked")
        stamp = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {put['VersionId']}"
        lambdas = session.client("lambda")
        report["restarted"] = [restart(lambdas, function, stamp) for function in sorted(target.functions)]
        report["done"].append("caches flushed")
        report["stages"] = versions(secrets, target.secret_name)
        return finish(report, args, 0)
    except Refused as refusal:
        report["refused"] = str(refusal)
        return finish(report, args, 2)
    except Exception as error:  # an AWS call failed: say how far it got; the message names no value
        report["error"] = f"{type(error).__name__}: {error}"
        return finish(report, args, 1)


def finish(report: dict[str, Any], args: argparse.Namespace, status: int) -> int:
    """Print the report (field names, versions, functions; never a value) and return ``status``."""
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    elif "refused" in report:
        print(f"partner {report['partner']}: refused, nothing changed: {report['refused']}")
    elif "error" in report:
        print(
            f"partner {report['partner']}: FAILED after {', '.join(report['done']) or 'no change'}: {report['error']}"
        )
    else:
        print_changes(report)
        print_hand_over(report)
    return status


def print_changes(report: dict[str, Any]) -> None:
    secret = report["secret"]
    if report.get("dry_run"):
        print(
            f"partner {report['partner']}: dry run: would rotate {secret} (now version {report['previous']})"
        )
        print(f"  and restart {', '.join(report['functions'])}")
    else:
        print(f"partner {report['partner']}: {secret}: new AWSCURRENT version {report['version']}")
        for version in report["revoked"]:
            removed = ", ".join(version["removed"]) or "no stage to remove"
            print(f"  revoked version {version['version']} (removed: {removed})")
        for restarted in report["restarted"]:
            moved = "".join(f"; alias {a['alias']} -> version {a['to']}" for a in restarted["aliases"])
            print(f"  restarted {restarted['function']} ({REVOKED_AT}){moved}")
    for label, names in (("generated", "generated"), ("from the values file", "supplied"), ("kept", "kept")):
        if report[names]:
            print(f"  {label}: {', '.join(report[names])}")
    if report["dropped"]:
        print(f"  dropped (not in the profile): {', '.join(report['dropped'])}")


def print_hand_over(report: dict[str, Any]) -> None:
    """What the operator must hand to the partner: where to read it, never the material."""
    if report.get("dry_run"):
        return
    if report["hand_over"]:
        print(
            f"hand to {report['partner']}: {', '.join(report['hand_over'])} (generated here), read with\n"
            f"  aws secretsmanager get-secret-value --secret-id {report['secret']} --version-id {report['version']} "
            "--query SecretString --output text\n"
            "  and send them over the partner's key-registration channel, never by e-mail or chat."
        )
    if "partner_keys_file" in report:
        print(
            f"hand to {report['partner']}: {report['partner_keys_file']} (mode 600: material only the partner "
            "keeps; send it over the partner's key-registration channel, then delete it)"
        )


if __name__ == "__main__":
    sys.exit(main())
