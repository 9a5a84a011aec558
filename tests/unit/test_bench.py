"""scripts/bench.py (``make bench``): every registered scheme gets a row, keyed through the registry, and the
references table names only registered schemes. Timing is stubbed out: one call per operation."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from sealgate import schemes

BENCH_PATH = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sealgate_bench", BENCH_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def once(bench: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``bench`` with each timed operation run once (its rate reads 1.0) and PHP on a tiny budget."""

    def rate(fn: object) -> float:
        assert callable(fn)
        fn()
        return 1.0

    monkeypatch.setattr(bench, "rate", rate)
    monkeypatch.setenv("BENCH_SECONDS", "0.001")
    return bench


def test_references_name_registered_schemes(bench: ModuleType) -> None:
    registered = set(schemes.names("cipher")) | set(schemes.names("signer"))
    assert set(bench.REFERENCES) <= registered


@pytest.mark.parametrize("name", schemes.names("cipher"))
def test_every_cipher_gets_a_row(once: ModuleType, name: str) -> None:
    row = once.cipher_row(name)
    cipher = schemes.lookup("cipher", name)
    assert row.scheme.startswith(name)
    assert (row.ours_seal is not None) == cipher.can_encrypt
    if cipher.can_encrypt:
        assert row.ours_open == 1.0


def test_signers_that_sign_outside_a_profile_get_a_row(once: ModuleType) -> None:
    rows = [row for name in schemes.names("signer") if (row := once.signer_row(name)) is not None]
    assert [row.scheme for row in rows] == ["dlocal-v2 (sign / verify)"]
    assert (rows[0].ours_seal, rows[0].ours_open) == (1.0, 1.0)


@pytest.mark.parametrize("function", ["encrypt", "sign", "forward"])
def test_function_imports_are_app_py_imports_without_its_cold_start(bench: ModuleType, function: str) -> None:
    code = bench.function_imports(function)
    compile(code, f"functions/{function}/app.py", "exec")
    assert "from sealgate" in code
    assert "Runtime.start" not in code
    assert "__future__" not in code
