"""MACs, tags, signatures and credentials are compared in constant time (``hmac.compare_digest``), never with
``==`` or ``!=``, which stop at the first differing byte and so tell a caller how much of a guess was right.

The rule, checked on the source (an AST scan, no import):

- every ``==``/``!=`` is looked at, each side on its own;
- a side is *sensitive* when one of the names it reads — a variable, an attribute, a called function, or a
  string used as a lookup key (``fields["mac"]``, ``headers.get("Authorization")``) — holds one of
  :data:`SENSITIVE_WORDS` (or :data:`SENSITIVE_PAIRS`) once split into words (``snake_case``, ``camelCase``,
  ``X-Header-Names``); whole words, so ``stage`` is not a ``tag`` and ``sign`` is not a ``signature``;
- a length is public: what is inside ``len(...)`` does not count, and a comparison with a ``len(...)`` on
  either side is a format check (``len(tag) != _TAG_BYTES``);
- a string literal compared as a value is not a name (``code == "mac_mismatch"`` compares a public code).

A comparison the rule flags but that compares nothing secret is listed in :data:`ALLOWED` with its reason,
keyed by file and normalised source text (not by line: the files move), and an entry that no longer matches
anything fails the test so the list cannot go stale.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = (
    *sorted((ROOT / "layers/crypto/sealgate").rglob("*.py")),
    *sorted((ROOT / "functions").glob("*/app.py")),
    # The partners' side checks credentials too (sandboxes.py and the modules split from it; read only).
    *sorted((ROOT / "local/sealgate_local").glob("sandbox*.py")),
)

SENSITIVE_WORDS = frozenset(
    {
        "mac",
        "hmac",
        "tag",
        "signature",
        "sig",
        "digest",
        "hexdigest",
        "expected",
        "presented",
        "token",
        "secret",
        "credential",
        "password",
        "passphrase",
        "authorization",
        "bearer",
    }
)
SENSITIVE_PAIRS = frozenset({("api", "key"), ("trans", "key"), ("access", "key"), ("private", "key")})

ALLOWED: dict[tuple[str, str], str] = {
    (
        "layers/crypto/sealgate/idempotency.py",
        "result.get('token') == token",
    ): "a uuid4 this invocation made and stored in its own idempotency record, to learn whether it ran the "
    "work itself; no caller sends or sees it",
}


@dataclass(frozen=True)
class Finding:
    line: int
    source: str
    words: tuple[str, ...]


def words_of(identifier: str) -> list[str]:
    """``expectedMac`` -> ``["expected", "mac"]``, ``X-Trans-Key`` -> ``["x", "trans", "key"]``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", identifier)
    return [word.lower() for word in re.split(r"[^A-Za-z0-9]+", spaced) if word]


def sensitive_words(identifier: str) -> set[str]:
    words = words_of(identifier)
    found = {w for w in words if w in SENSITIVE_WORDS or (w.endswith("s") and w[:-1] in SENSITIVE_WORDS)}
    found |= {f"{a}_{b}" for a, b in itertools.pairwise(words) if (a, b) in SENSITIVE_PAIRS}
    return found


def names_read(operand: ast.expr) -> Iterator[str]:
    """The identifiers one side of a comparison reads, lengths left out (see the module docstring)."""
    pending: list[ast.AST] = [operand]
    while pending:
        node = pending.pop()
        if _is_length(node):
            continue
        if isinstance(node, ast.Name):
            yield node.id
        elif isinstance(node, ast.Attribute):
            yield node.attr
        elif isinstance(node, ast.Subscript) and _is_text(node.slice):
            yield node.slice.value  # type: ignore[attr-defined]
        elif isinstance(node, ast.Call):
            yield from (arg.value for arg in node.args if _is_text(arg))  # type: ignore[attr-defined]
        pending.extend(ast.iter_child_nodes(node))


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _is_length(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len"


def unsafe_comparisons(tree: ast.AST) -> list[Finding]:
    """Every ``==``/``!=`` in ``tree`` with a sensitive side."""
    findings = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for index, op in enumerate(node.ops):
            sides = operands[index : index + 2]
            if not isinstance(op, ast.Eq | ast.NotEq) or any(map(_is_length, sides)):
                continue
            words = {word for side in sides for name in names_read(side) for word in sensitive_words(name)}
            if words:
                findings.append(Finding(node.lineno, ast.unparse(node), tuple(sorted(words))))
                break
    return findings


def scan(path: Path) -> list[Finding]:
    return unsafe_comparisons(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


class ConstantTimeToEquality(ast.NodeTransformer):
    """The mutation: every ``hmac.compare_digest(a, b)`` becomes ``a == b``."""

    def __init__(self) -> None:
        self.replaced = 0

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "compare_digest" and len(node.args) == 2:
            self.replaced += 1
            return ast.copy_location(ast.Compare(node.args[0], [ast.Eq()], [node.args[1]]), node)
        return node


# --- the code as it is ----------------------------------------------------------------------------------------


def test_the_scan_covers_the_layer_the_handlers_and_the_sandboxes() -> None:
    scanned = {relative(path) for path in SCANNED}

    assert len(scanned) > 40
    assert {
        "layers/crypto/sealgate/schemes/laravel_cbc.py",
        "layers/crypto/sealgate/schemes/dlocal_v2.py",
        "layers/crypto/sealgate/schemes/aesbridge_cbc.py",
        "layers/crypto/sealgate/http_api.py",
        "functions/sign/app.py",
        "local/sealgate_local/sandboxes.py",
    } <= scanned


@pytest.mark.parametrize("path", SCANNED, ids=relative)
def test_no_mac_tag_signature_or_credential_is_compared_with_equality(path: Path) -> None:
    unexplained = [
        f"{relative(path)}:{finding.line}: {finding.source}  (reads {', '.join(finding.words)})"
        for finding in scan(path)
        if (relative(path), finding.source) not in ALLOWED
    ]

    assert unexplained == [], "use hmac.compare_digest, or add to ALLOWED with the reason"


def test_every_allowed_exception_still_exists() -> None:
    present = {(relative(path), finding.source) for path in SCANNED for finding in scan(path)}

    assert set(ALLOWED) <= present, "an ALLOWED entry no longer matches any comparison: remove it"


# --- the scanner catches what it is for -----------------------------------------------------------------------

VERIFY = """
import hmac

def verify(expected: bytes, fields: dict[str, str]) -> None:
    if not hmac.compare_digest(expected, fields["mac"].encode("ascii")):
        raise ValueError("mac mismatch")

def check(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
"""


def test_a_compare_digest_replaced_by_equality_is_flagged() -> None:
    original = ast.parse(VERIFY)
    assert unsafe_comparisons(original) == []

    mutation = ConstantTimeToEquality()
    mutant = mutation.visit(ast.parse(VERIFY))

    assert mutation.replaced == 2
    findings = unsafe_comparisons(mutant)
    assert [finding.source for finding in findings] == ["expected == fields['mac'].encode('ascii')"]
    assert findings[0].words == ("expected", "mac")


def test_a_bare_equality_on_plain_names_is_flagged_once_the_names_say_mac() -> None:
    # ``a == b`` says nothing about what a and b hold; the rule works on names, so the same mutation on names
    # that say what they hold is flagged.
    assert unsafe_comparisons(ast.parse("a == b")) == []
    for source in (
        "computed_mac == received",
        "tag != expected_tag",
        "self.signature == other",
        "headers['X-Signature'] == value",
        "request.header('Authorization') != f'Bearer {key}'",
        "secret['api_key'] == presented",
        "hmac.new(key, body, sha256).hexdigest() == header",
        "expectedMac == theirs",
        "tokens == []",
    ):
        assert len(unsafe_comparisons(ast.parse(source))) == 1, source


def test_public_comparisons_are_not_flagged() -> None:
    for source in (
        "len(tag) != 16",
        "len(iv) != _IV_BYTES or len(tag) != _TAG_BYTES",
        "stage == CURRENT",
        "match['sign'] == '-'",
        "reply.code == 'mac_mismatch'",
        "len(signature) == len(expected) and x == 1",
        "message.key_version == current.version_id",
        "tag is None",
        "mac in seen",
    ):
        assert unsafe_comparisons(ast.parse(source)) == [], source


@pytest.mark.parametrize(
    "path",
    [path for path in SCANNED if "compare_digest" in path.read_text(encoding="utf-8")],
    ids=relative,
)
def test_every_real_compare_digest_turned_into_equality_is_flagged(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    before = {finding.source for finding in unsafe_comparisons(tree)}

    mutation = ConstantTimeToEquality()
    mutant = ast.fix_missing_locations(mutation.visit(tree))
    new = [finding for finding in unsafe_comparisons(mutant) if finding.source not in before]

    assert mutation.replaced > 0
    assert len(new) == mutation.replaced, [finding.source for finding in new]
