"""sealgate_local.generate: template.yaml's secret policies and events/ follow from the partner profiles.

Adding a partner is adding its profile: these tests add profiles in a temporary folder (as
``SEALGATE_PROFILES_DIR`` does) and check what ``make generate`` makes of them, on copies of the files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from sealgate.partners import load_profiles, served_by
from sealgate_local import generate
from sealgate_local.__main__ import main
from tests.template.conftest import EVENTS, ROOT, TEMPLATE

SHIPPED = ROOT / "layers" / "crypto" / "sealgate" / "partners" / "profiles"

# Uses only existing schemes: an AES-GCM partner that neither signs nor sends webhooks, and a JWE card partner
# that signs with stored headers.
ACME = {
    "name": "acme",
    "base_url": "https://api.acme.example/",
    "secret_fields": ["key"],
    "protection": {"scheme": "aes-gcm", "layout": "wrap", "key": "key", "wrap_field": "data"},
    "operations": {"events": {"method": "POST", "path": "v1/events"}},
    "example": {"payload": {"event": "signup", "email": "someone@example.com"}},
}
ACMECARD = {
    "name": "acmecard",
    "base_url": "https://api.acmecard.example/",
    "secret_fields": ["public_key", "api_key"],
    "protection": {"scheme": "jwe", "layout": "card", "key": "public_key", "card_field": "card"},
    "signing": {"scheme": "static-headers", "headers": {"X-Api-Key": "api_key"}},
    "operations": {
        "charges": {"method": "POST", "path": "v1/charges"},
        "refunds": {"method": "POST", "path": "v1/refunds"},
    },
    "example": {
        "operation": "refunds",
        "payload": {
            "amount": 1,
            "card": {"number": "4111111111111111", "cvv": "123", "expiration_year": 2040},
        },
    },
}


def write_profiles(folder: Path, *documents: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for document in documents:
        (folder / f"{document['name']}.json").write_text(json.dumps(document), encoding="utf-8")
    return folder


@pytest.fixture
def copies(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of template.yaml and of events/, for the generator to rewrite."""
    template = tmp_path / "template.yaml"
    shutil.copyfile(TEMPLATE, template)
    events = tmp_path / "events"
    shutil.copytree(EVENTS, events)
    return template, events


def outside_the_blocks(text: str) -> list[str]:
    """The template's lines, less those between the BEGIN and END markers."""
    kept, inside = [], False
    for line in text.splitlines(keepends=True):
        if generate.BEGIN.fullmatch(line):
            inside = True
            kept.append(line)
        elif line.strip() == generate.END:
            inside = False
        if not inside:
            kept.append(line)
    return kept


def block_partners(text: str) -> dict[str, list[str]]:
    """Function -> the partners whose secrets its generated block lets it read, in order."""
    found: dict[str, list[str]] = {}
    function = None
    for line in text.splitlines():
        begin = generate.BEGIN.fullmatch(line + "\n")
        if begin:
            function = begin["function"]
            found[function] = []
        elif line.strip() == generate.END:
            function = None
        elif function is not None and "SecretArn:" in line:
            found[function].append(line.rsplit("/", 1)[1].removesuffix("-??????"))
    return found


# --- template.yaml --------------------------------------------------------------------------------------------


def test_a_new_profile_reaches_exactly_the_roles_of_the_functions_that_serve_it(tmp_path: Path) -> None:
    extra = write_profiles(tmp_path / "profiles", ACME, ACMECARD)
    profiles = load_profiles([extra])
    current = TEMPLATE.read_text(encoding="utf-8")

    rewritten = generate.template_text(current, profiles)

    assert block_partners(rewritten) == {f: list(served_by(f, profiles)) for f in generate.FUNCTIONS}
    assert "acme" in block_partners(rewritten)["encrypt"]
    assert "acme" in block_partners(rewritten)["forward"]
    assert (
        "acme" not in block_partners(rewritten)["sign"]
    )  # neither signs nor sends webhooks: least privilege
    assert "acmecard" in block_partners(rewritten)["sign"]
    assert outside_the_blocks(rewritten) == outside_the_blocks(current)
    # and back: with the shipped profiles only, the template is byte for byte what it was
    assert generate.template_text(rewritten, load_profiles()) == current


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.replace("# END generated\n", "", 1), "BEGIN inside the block"),
        (lambda t: t.rsplit("# END generated\n", 1)[0], "no '# END generated' line"),
        (lambda t: t.replace("(encrypt): make", "(decrypt): make"), "unknown function 'decrypt'"),
        (lambda t: t.replace("(sign): make", "(encrypt): make"), "a second block for 'encrypt'"),
        (lambda t: t + "# END generated\n", "without a BEGIN line"),
    ],
)
def test_broken_markers_are_refused_with_the_line(change: Any, message: str) -> None:
    with pytest.raises(generate.GenerateError, match=message):
        generate.template_text(change(TEMPLATE.read_text(encoding="utf-8")), load_profiles())


def test_a_function_without_its_block_is_refused() -> None:
    text = TEMPLATE.read_text(encoding="utf-8")
    start = text.index("        # BEGIN generated from partner profiles (sign)")
    end = text.index("# END generated\n", start) + len("# END generated\n")
    with pytest.raises(generate.GenerateError, match="no generated block for sign"):
        generate.template_text(text[:start] + text[end:], load_profiles())


# --- events/ ----------------------------------------------------------------------------------------------------


def test_new_profiles_get_their_events_and_check_lists_what_is_stale(
    tmp_path: Path, copies: tuple[Path, Path]
) -> None:
    template, events = copies
    extra = write_profiles(tmp_path / "profiles", ACME, ACMECARD)

    stale = {change.path.name for change in generate.plan([extra], template=template, events_dir=events)}

    assert stale == {
        "template.yaml",
        "encrypt-acme.json",
        "decrypt-acme.json",
        "forward-enqueue-acme.json",
        "encrypt-acmecard.json",
        "decrypt-acmecard.json",
        "forward-enqueue-acmecard.json",
        "sign-acmecard.json",
        "sqs-forward-batch.json",
    }
    generate.apply(generate.plan([extra], template=template, events_dir=events))
    assert generate.plan([extra], template=template, events_dir=events) == []

    enqueue = json.loads(json.loads((events / "forward-enqueue-acmecard.json").read_text())["body"])
    assert enqueue["operation"] == "refunds"
    assert enqueue["payload"] == ACMECARD["example"]["payload"]  # type: ignore[index]
    decrypt = json.loads((events / "decrypt-acme.json").read_text())
    assert decrypt["pathParameters"] == {"partner": "acme"}
    assert set(json.loads(decrypt["body"])["payload"]) == {"data"}  # the wrap layout's one token
    sign = json.loads(json.loads((events / "sign-acmecard.json").read_text())["body"])
    card = json.loads(sign["body"])["card"]
    assert set(card) == {"expiration_year", "encrypted_data"}  # number and CVV only inside the JWE
    assert not (events / "sign-acme.json").exists()


def test_stale_and_orphaned_event_files_are_listed_then_fixed(copies: tuple[Path, Path]) -> None:
    template, events = copies
    (events / "encrypt-paykun.json").write_text("{}\n", encoding="utf-8")
    (events / "webhook-netcore.json").write_text("{}\n", encoding="utf-8")  # Netcore sends no webhooks
    (events / "sign-netcore.json").unlink()

    changes = generate.plan(template=template, events_dir=events)

    assert {(c.path.name, c.text is None) for c in changes} == {
        ("encrypt-paykun.json", False),
        ("webhook-netcore.json", True),
        ("sign-netcore.json", False),
    }
    generate.apply(changes)
    assert not (events / "webhook-netcore.json").exists()
    assert (events / "encrypt-paykun.json").read_bytes() == (EVENTS / "encrypt-paykun.json").read_bytes()
    assert (events / "sign-netcore.json").read_bytes() == (EVENTS / "sign-netcore.json").read_bytes()


def test_tokens_stay_while_their_shape_does_and_change_with_it() -> None:
    profiles = load_profiles()
    netcore = json.loads((EVENTS / "decrypt-netcore.json").read_text())
    token = json.loads(netcore["body"])["payload"]["encryptedRequest"]

    assert generate.protected_example(profiles["netcore"], [{"a": 1}], {"encryptedRequest": token}) == {
        "encryptedRequest": token
    }
    fresh = generate.protected_example(profiles["netcore"], [{"a": 1}], {"otherField": token})
    assert set(fresh) == {"encryptedRequest"}
    assert fresh["encryptedRequest"] != token
    # Infosimples: one token per listed field present in the example
    fields = generate.protected_example(profiles["infosimples"], {"cpf": "52998224725", "cnpj": "x"})
    assert set(fields) == {"enc_cpf", "enc_cnpj"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("example"), 'has no "example"'),
        (lambda d: d["example"].update(operation="nope"), "example operation 'nope'"),
        (lambda d: d["example"].pop("webhook"), 'its example needs "webhook"'),
        (lambda d: d["example"].update(payload={"no card": True}), "cannot be protected"),
    ],
)
def test_examples_that_cannot_make_events_are_refused(
    change: Any, message: str, tmp_path: Path, copies: tuple[Path, Path]
) -> None:
    template, events = copies
    document = json.loads((SHIPPED / "dlocal.json").read_text())
    document["name"] = "dlocal2"
    change(document)
    extra = write_profiles(tmp_path / "profiles", document)

    with pytest.raises(generate.GenerateError, match=message):
        generate.plan([extra], template=template, events_dir=events)


def test_the_command_checks_without_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.delenv("SEALGATE_PROFILES_DIR", raising=False)
    before = TEMPLATE.read_bytes()

    assert main(["generate", "--check"]) == 0
    extra = write_profiles(tmp_path / "profiles", ACME)
    assert main(["generate", "--check", "--profiles-dir", str(extra)]) == 1
    monkeypatch.setenv("SEALGATE_PROFILES_DIR", str(extra))
    assert main(["generate", "--check"]) == 1

    out = capsys.readouterr().out
    assert "template.yaml: stale" in out
    assert "events/encrypt-acme.json: stale" in out
    assert TEMPLATE.read_bytes() == before
    assert not (EVENTS / "encrypt-acme.json").exists()
