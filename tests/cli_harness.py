"""Runs the ``sealgate`` command line for the tests: in process (fast) or as a real process (the contract).

Both return an :class:`Outcome` (exit status, stdout bytes, stderr text), so a test can check the same
contract either way. Keys always travel in files, as the command line demands.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sealgate import cli

#: ``python -m sealgate`` and the installed console script, as argv prefixes.
MODULE: tuple[str, ...] = (sys.executable, "-m", "sealgate")
SCRIPT: tuple[str, ...] = (str(Path(sys.executable).with_name("sealgate")),)

#: The one stderr line of every refusal: ``sealgate: <code>: <message>``.
ERROR_LINE = re.compile(r"sealgate: (?P<code>[a-z_]+): [^\r\n]+\n")


@dataclass(frozen=True)
class Outcome:
    """What one run left behind."""

    status: int
    stdout: bytes
    stderr: str

    @property
    def code(self) -> str | None:
        """The stable error code of the stderr line, if stderr is exactly one such line."""
        match = ERROR_LINE.fullmatch(self.stderr)
        return match["code"] if match else None


def invoke(*argv: str, stdin: bytes = b"") -> Outcome:
    """``sealgate.cli.main(argv)`` with the standard streams swapped for in-memory ones."""
    out_bytes = io.BytesIO()
    fake_in = io.TextIOWrapper(io.BytesIO(stdin))
    fake_out = io.TextIOWrapper(out_bytes, write_through=True)
    fake_err = io.StringIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = fake_in, fake_out, fake_err
    try:
        try:
            status = cli.main(list(argv))
        except SystemExit as leaving:  # --help and --version leave through argparse
            status = leaving.code if isinstance(leaving.code, int) else 0
        fake_out.flush()
        return Outcome(status, out_bytes.getvalue(), fake_err.getvalue())
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved


def spawn(command: Sequence[str], *argv: str, stdin: bytes = b"") -> Outcome:
    """One real process: ``command`` (:data:`MODULE` or :data:`SCRIPT`) followed by ``argv``."""
    done = subprocess.run([*command, *argv], input=stdin, capture_output=True, check=False, timeout=60)
    return Outcome(done.returncode, done.stdout, done.stderr.decode("utf-8", errors="replace"))


def key_file(folder: Path, name: str, content: bytes) -> str:
    """Write ``content`` (exactly) to ``folder/name`` and return the path as text."""
    path = folder / name
    path.write_bytes(content)
    return str(path)


def assert_refused(outcome: Outcome, status: int, code: str, *secrets: bytes | str) -> None:
    """Exit ``status``, nothing on stdout, stderr one ``sealgate: <code>:`` line leaking none of ``secrets``."""
    assert outcome.stdout == b"", "a refusal wrote to stdout"
    assert outcome.code == code, f"stderr is not one '{code}' line: {outcome.stderr[:200]!r}"
    assert outcome.status == status, f"exit status {outcome.status}, expected {status}"
    assert_clean_stderr(outcome.stderr, *secrets)


def assert_clean_stderr(stderr: str, *secrets: bytes | str) -> None:
    """No traceback, no ``MARK``, and none of ``secrets`` (keys, plaintexts, tokens) nor any line of theirs."""
    assert "Traceback" not in stderr
    assert "MARK" not in stderr, "stderr shows a marked key or plaintext"
    for secret in secrets:
        text = secret.decode("utf-8", errors="replace") if isinstance(secret, bytes) else secret
        pieces = [text.strip(), *(line.strip() for line in text.splitlines())]
        for piece in pieces:
            if len(piece) >= 8 and not piece.startswith("-----"):  # PEM armour lines are not secret
                assert piece not in stderr, "stderr shows a key, plaintext or token"
