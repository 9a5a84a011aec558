"""cfn-lint, ``sam validate --lint`` and ``sam build``'s layer, from the tool environment (.tools/sam, created by
``make tools``)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_oracle
from tests.template.conftest import ROOT, TEMPLATE

TOOLS = ROOT / ".tools" / "sam" / "bin"
#: importlib.util.MAGIC_NUMBER of every CPython 3.13.x, the Lambda runtime python3.13
MAGIC_313 = (3571).to_bytes(2, "little") + b"\r\n"
ELF_AARCH64 = 183  # e_machine of an arm64 shared object


@pytest.fixture(scope="module")
def tools() -> None:
    available = (TOOLS / "sam").is_file() and (TOOLS / "cfn-lint").is_file()
    require_oracle("aws-sam-cli", available, "run: make tools")


@pytest.mark.usefixtures("tools")
def test_cfn_lint_is_clean() -> None:
    result = subprocess.run(
        [str(TOOLS / "cfn-lint"), "--", str(TEMPLATE)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.usefixtures("tools")
def test_sam_validate_lint_is_clean() -> None:
    result = subprocess.run(
        ["bash", "scripts/sam.sh", "validate", "--lint", "--template-file", str(TEMPLATE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


@pytest.fixture(scope="module")
def built_layer(tools: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The layer's ``python/`` folder as ``sam build CryptoLayer`` makes it, in a folder of its own: the built
    stack's test (tests/integration) may be building into .aws-sam/ at the same time."""
    build = tmp_path_factory.mktemp("sam-build")
    result = subprocess.run(
        ["bash", "scripts/sam.sh", "build", "CryptoLayer", "--build-dir", str(build), "--no-cached"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return build / "CryptoLayer" / "python"


def bytecode_of(source: Path) -> Path:
    return source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"


def missing_bytecode(package: Path) -> list[str]:
    return [str(source) for source in sorted(package.rglob("*.py")) if not bytecode_of(source).is_file()]


@pytest.mark.slow
def test_the_built_layer_ships_bytecode_for_every_module(built_layer: Path) -> None:
    """Lambda's /opt is read-only: a module without a .pyc in the layer is compiled again at every cold start."""
    for package in ("sealgate", "jwcrypto", "aws_lambda_powertools", "cryptography", "urllib3"):
        assert (built_layer / package / "__init__.py").is_file(), package
        assert missing_bytecode(built_layer / package) == [], package


@pytest.mark.slow
def test_the_layers_bytecode_is_python313_in_unchecked_hash_mode(built_layer: Path) -> None:
    """Python 3.13's magic number, and flags 0b01: hash-based, source not checked (PEP 552), so the mtimes the zip
    and /opt give the sources cannot make it stale."""
    if sys.version_info[:2] == (3, 13):
        assert importlib.util.MAGIC_NUMBER == MAGIC_313
    compiled = sorted(built_layer.rglob("*.pyc"))
    assert len(compiled) > 500
    for path in compiled:
        assert path.parent.name == "__pycache__", path
        assert path.name.endswith(".cpython-313.pyc"), path
        header = path.read_bytes()[:8]
        assert header[:4] == MAGIC_313, path
        assert int.from_bytes(header[4:8], "little") == 0b01, path


@pytest.mark.slow
def test_the_built_layer_keeps_the_packages_data_files(built_layer: Path) -> None:
    sources = ROOT / "layers" / "crypto" / "sealgate"
    data = sorted(
        path.relative_to(sources)
        for path in sources.rglob("*")
        if path.is_file() and path.suffix != ".py" and "__pycache__" not in path.parts
    )
    assert Path("py.typed") in data
    assert Path("partners/profile.schema.json") in data
    assert len([path for path in data if path.parent == Path("partners/profiles")]) >= 4
    for name in data:
        assert (built_layer / "sealgate" / name).read_bytes() == (sources / name).read_bytes(), name


@pytest.mark.slow
def test_the_built_layer_is_for_lambda_and_within_its_budget(built_layer: Path) -> None:
    """arm64 wheels (whatever machine builds), no bytecode of another interpreter, and at most 25 MiB unzipped."""
    extensions = sorted(built_layer.rglob("*.so"))
    assert built_layer / "cryptography" / "hazmat" / "bindings" / "_rust.abi3.so" in extensions
    for path in extensions:
        header = path.read_bytes()[:20]
        assert header[:4] == b"\x7fELF", path
        assert int.from_bytes(header[18:20], "little") == ELF_AARCH64, path
    assert [path for path in built_layer.rglob("*.pyc") if ".cpython-313." not in path.name] == []
    size = sum(path.lstat().st_size for path in built_layer.rglob("*") if path.is_file())
    assert size <= 25 * 2**20
