"""Shared fixtures: oracles (independent implementations) and throwaway keys.

An interop test whose oracle is missing fails in CI (``CI=true``) and skips elsewhere with the reason.

The tests run this checkout's code: ``layers/crypto`` and ``local`` go first on ``sys.path`` (ahead of the venv's
editable install, which may point at another tree), and the run stops at once if ``sealgate`` or
``sealgate_local`` still come from elsewhere. Every test that holds a local stack also checks, when it ends,
that each of the stack's workers loaded ``sealgate``, its handler and its harness from this checkout.

Every test's captured output, and what a local or moto stack holds, is searched for keys and plaintexts by
:mod:`tests.leak_detector`.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[1]
for _folder in (CHECKOUT / "local", CHECKOUT / "layers" / "crypto"):
    if str(_folder) in sys.path:
        sys.path.remove(str(_folder))
    sys.path.insert(0, str(_folder))
for _package in ("sealgate", "sealgate_local"):
    _file = getattr(importlib.import_module(_package), "__file__", None) or ""
    if not Path(_file).resolve().is_relative_to(CHECKOUT):
        raise pytest.UsageError(f"{_package} is loaded from {_file}, not from this checkout {CHECKOUT}")

pytest_plugins = ["pytester", "tests.leak_detector"]

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(autouse=True)
def _local_stacks_run_this_checkout(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test, every local stack it used must have run this checkout's code in every worker."""
    yield
    stack_module = sys.modules.get("sealgate_local.stack")
    if stack_module is None:
        return
    for name, value in request.node.funcargs.items():
        if isinstance(value, stack_module.LocalStack) and value.pools:
            found = value.loaded_outside(CHECKOUT)
            assert not found, f"local stack {name!r} ran code from outside {CHECKOUT}: {found}"


def require_oracle(name: str, available: bool, how: str) -> None:
    """Fail (CI) or skip (elsewhere) when the oracle ``name`` is not available."""
    if available:
        return
    message = f"oracle {name} is missing: {how}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def php() -> str:
    """Path of the ``php`` CLI (the partners' own PHP snippets run on it)."""
    path = shutil.which("php")
    require_oracle("php", path is not None, "install php-cli (apt-get install -y php-cli)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def openssl() -> str:
    """Path of the ``openssl`` CLI."""
    path = shutil.which("openssl")
    require_oracle("openssl", path is not None, "install openssl")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def oracle_module() -> Callable[[str, str], object]:
    """Import a Python oracle package, failing in CI and skipping elsewhere when it is absent."""

    def load(module: str, how: str) -> object:
        import importlib

        try:
            return importlib.import_module(module)
        except ImportError:
            require_oracle(module, False, how)
            raise  # pragma: no cover - require_oracle always raises here

    return load
