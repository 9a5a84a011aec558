"""Shared fixtures: oracles (independent implementations) and throwaway keys.

An interop test whose oracle is missing fails in CI (``CI=true``) and skips elsewhere with the reason.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


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
