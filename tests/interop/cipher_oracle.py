"""Runs ``php/cipher_oracle.php``: a batch of PHP oracle calls in one process, values through stdin."""

from __future__ import annotations

import base64
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

DRIVER = Path(__file__).parent / "php" / "cipher_oracle.php"


@dataclass
class PhpBatch:
    """Collects calls, runs them all in one ``php`` process, and hands back each call's result."""

    calls: list[dict[str, object]] = field(default_factory=list)

    def add(self, op: str, *, encoding: str | None = None, **binary: bytes) -> int:
        """Queue ``op`` with binary arguments (sent as base64); returns the index of its result."""
        args: dict[str, str] = {
            f"{name}_b64": base64.b64encode(value).decode() for name, value in binary.items()
        }
        if encoding is not None:
            args["encoding"] = encoding
        self.calls.append({"op": op, "args": args})
        return len(self.calls) - 1

    def run(self, php: str) -> list[bytes | str]:
        """Each result: the returned bytes, or the PHP exception as ``str`` (a refusal)."""
        done = subprocess.run(
            [php, str(DRIVER)],
            input=json.dumps(self.calls).encode(),
            capture_output=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        results = json.loads(done.stdout)
        assert len(results) == len(self.calls)
        return [base64.b64decode(r["ok"]) if "ok" in r else str(r["error"]) for r in results]


def ok(result: bytes | str) -> bytes:
    """The bytes of a successful call; fails the test with PHP's message otherwise."""
    assert isinstance(result, bytes), f"PHP oracle refused: {result}"
    return result
