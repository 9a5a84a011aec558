"""scripts/bench.py (``make bench``): every registered scheme gets a row, keyed through the registry, and the
references table names only registered schemes. Timing is stubbed out: one call per operation.

scripts/function_bench.py (the functions as Lambda runs them) and scripts/plain_handler.py (its baseline): the
plain handler answers an encrypt event on moto, the child processes answer (tiny handlers, cheap), and the
tables format; no timing is asserted."""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sealgate import schemes

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
BENCH_PATH = SCRIPTS / "bench.py"


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    """scripts/bench.py, with scripts/ on the path as when it runs as a script (it imports function_bench)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(SCRIPTS))
        patch.delitem(sys.modules, "function_bench", raising=False)
        yield load(BENCH_PATH, "sealgate_bench")
        sys.modules.pop("sealgate_bench", None)


@pytest.fixture(scope="module")
def fb(bench: ModuleType) -> ModuleType:
    """scripts/function_bench.py, as bench.py imported it."""
    module: ModuleType = bench.function_bench
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


# --- the plain handler (benchmark baseline) ---------------------------------------------------------------------


@pytest.fixture
def moto_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """moto in this process, dummy credentials, nothing of the shell's AWS settings; a Secrets Manager client."""
    import boto3
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "POWERTOOLS_SERVICE_NAME": "bench",
        "POWERTOOLS_METRICS_NAMESPACE": "SealgateBench",
        "SEALGATE_SECRET_PREFIX": "sealgate/bench/",
        "PLAIN_PARTNER": "netcore",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield boto3.client("secretsmanager")


def test_plain_handler_answers_the_encrypt_event_with_aes_gcm(
    fb: ModuleType, moto_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = "k" * 32  # throwaway test key
    moto_env.create_secret(Name="sealgate/bench/netcore", SecretString=json.dumps({"key": key}))
    name = f"plain_handler_{uuid.uuid4().hex}"
    monkeypatch.setitem(sys.modules, name, None)  # removed again when the test ends
    handler = load(fb.PLAIN_HANDLER, name)
    event = fb.load_event(fb.COLD_EVENTS["encrypt"])

    answer = handler.lambda_handler(event, fb.FakeContext(fb.context_values("plain", 128, 3)))

    assert answer["statusCode"] == 200
    token = base64.b64decode(json.loads(answer["body"])["payload"])
    opened = AESGCM(key.encode()).decrypt(token[:12], token[12:], None)
    assert json.loads(opened) == json.loads(event["body"])["payload"]


# --- cold-start processes -------------------------------------------------------------------------------------


@pytest.fixture
def tiny_handler(tmp_path: Path) -> Path:
    path = tmp_path / "handler.py"
    path.write_text(
        "def lambda_handler(event, context):\n"
        "    assert context.get_remaining_time_in_millis() == 3000\n"
        "    return {'statusCode': event['status']}\n"
    )
    return path


def target(fb: ModuleType, tmp_path: Path, command: list[str], stdin: bytes, **fields: Any) -> Any:
    return fb.ColdTarget(
        label="tiny",
        event="—",
        command=command,
        environment=fb.lambda_environment(
            {"STAGE": "bench"}, endpoint="http://127.0.0.1:9", home=tmp_path, lambda_name="tiny", memory=128
        ),
        stdin=stdin,
        cwd=tmp_path,
        **fields,
    )


def test_handler_command_passes_the_module_and_context_and_reads_the_event(fb: ModuleType) -> None:
    context = fb.context_values("sealgate-dev-EncryptFunction", 512, 10)
    command = fb.handler_command(Path("/code/app.py"), context)

    assert command[:2] == [sys.executable, "-c"]
    assert command[3] == "/code/app.py"
    assert json.loads(command[4]) == context
    assert context["remaining_ms"] == 10_000
    for code in (command[2], fb.FLOOR_CHILD, fb.INTERPRETER_CHILD):
        compile(code, "<child>", "exec")
        assert fb.MARKER in code


def test_a_handler_process_answers_and_reports_its_phases(
    fb: ModuleType, tmp_path: Path, tiny_handler: Path
) -> None:
    command = fb.handler_command(tiny_handler, fb.context_values("tiny", 128, 3))
    run = fb.spawn(target(fb, tmp_path, command, b'{"status": 202}', expected=202, handler=tiny_handler))

    assert run.seconds > 0
    assert run.import_s is not None
    assert run.answer_s is not None


def test_the_floor_and_the_bare_interpreter_answer(fb: ModuleType, tmp_path: Path) -> None:
    for code, stdin in ((fb.FLOOR_CHILD, b'{"payload": 1}'), (fb.INTERPRETER_CHILD, b"")):
        run = fb.spawn(target(fb, tmp_path, [sys.executable, "-c", code], stdin))
        assert run.seconds > 0


def test_a_process_without_the_expected_answer_is_a_failed_measurement(
    fb: ModuleType, tmp_path: Path, tiny_handler: Path
) -> None:
    command = fb.handler_command(tiny_handler, fb.context_values("tiny", 128, 3))
    with pytest.raises(fb.MeasurementError, match="answered 500, not 200"):
        fb.spawn(target(fb, tmp_path, command, b'{"status": 500}'))
    with pytest.raises(fb.MeasurementError, match=r"no answer .*KeyError"):
        fb.spawn(target(fb, tmp_path, command, b"{}"))


def test_a_child_sees_the_function_environment_and_local_aws_only(
    fb: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "someone-real")
    env = fb.lambda_environment(
        {"STAGE": "dev"}, endpoint="http://127.0.0.1:5000", home=tmp_path, lambda_name="f", memory=512
    )

    assert "AWS_PROFILE" not in env
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5000"
    assert env["AWS_ACCESS_KEY_ID"] == fb.DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"]
    assert (env["STAGE"], env["AWS_REGION"], env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]) == (
        "dev",
        "us-east-1",
        "512",
    )


def test_layer_sources_are_the_built_layers_packages_as_imported_here(fb: ModuleType, tmp_path: Path) -> None:
    layer = tmp_path / "CryptoLayer" / "python"
    for folder in ("jwcrypto", "jwcrypto-1.6.1.dist-info", "sealgate"):
        (layer / folder).mkdir(parents=True)
    (layer / "typing_extensions.py").write_text("")
    (layer / "requirements.txt").write_text("")

    found = fb.layer_sources(tmp_path)

    assert sorted(path.name for path in found) == ["jwcrypto", "sealgate", "typing_extensions.py"]
    assert all(path.exists() for path in found)


# --- events, tables -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("event", ["encrypt-netcore", "encrypt-dlocal", "forward-enqueue-infosimples"])
def test_payloads_are_padded_to_one_kib(fb: ModuleType, event: str) -> None:
    payload = json.loads(fb.load_event(event)["body"])["payload"]
    assert len(fb.compact(fb.padded(payload))) == 1024


def test_importtime_top_reads_cumulative_times(fb: ModuleType) -> None:
    report = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       120 |        120 |   botocore.compat\n"
        "import time:       300 |       9000 | boto3\n"
        "some warning\n"
        "import time:        50 |        500 | json\n"
    )
    assert fb.importtime_top(report, top=2) == [("boto3", 9000), ("json", 500)]


def test_tables_format_without_timing(fb: ModuleType, tmp_path: Path) -> None:
    targets = [
        fb.ColdTarget("encrypt function", "`e`", [], {}, b"", tmp_path, target=0.35),
        fb.ColdTarget(fb.PLAIN_LABEL, "`e`", [], {}, b"", tmp_path),
        fb.ColdTarget("bare interpreter", "—", [], {}, b"", tmp_path),
    ]
    runs = {
        "encrypt function": [fb.ColdRun(0.4, 0.3, 0.01), fb.ColdRun(0.5, 0.3, 0.01)],
        fb.PLAIN_LABEL: [fb.ColdRun(0.3, 0.25, 0.001)],
        "bare interpreter": [fb.ColdRun(0.02, None, None)],
    }
    cold = fb.cold_table(targets, runs).splitlines()
    assert cold[1].startswith("|---|---|---:|")
    assert "| encrypt function | `e` | 450 | 400 - 500 | 300 | 10.0 | 1.50x | <= 0.35x: MISSES |" in cold
    assert cold[-1].endswith("| — | — | 0.07x | — |")

    warm = fb.warm_table(
        [fb.WarmRow("POST /v1/encrypt/{partner}", "netcore", "aes-cbc-static", 2e-4, 2e-5, 1e-5)]
    )
    assert (
        warm.splitlines()[-1]
        == "| POST /v1/encrypt/{partner} | netcore | aes-cbc-static | 200 | 20 | 10 | 20.00x |  |"
    )

    batch = fb.batch_table(
        fb.BatchResult(
            one_s=0.08, ten_s=0.1, calls_one={"PutItem": 1}, calls_ten={"PutItem": 10, "GetItem": 10}
        )
    )
    assert "| ten ÷ one | 1.25x | <= 1.5x: meets |  |" in batch.splitlines()
    assert "| ten records | 100 | 10.0 | GetItem 10, PutItem 10 |" in batch.splitlines()

    profile = fb.import_table({"encrypt function": [("boto3", 120_000)], "plain handler": []})
    assert profile.splitlines()[-1] == "| 1 | `boto3` 120 |  |"


def test_package_sizes_are_unzipped_bytes_per_artifact(fb: ModuleType, tmp_path: Path) -> None:
    assert fb.package_sizes(tmp_path / "missing") is None
    layer = tmp_path / "CryptoLayer" / "python" / "cryptography"
    layer.mkdir(parents=True)
    (layer / "big.so").write_bytes(b"\0" * 3 * 2**20)
    (layer / "mod.cpython-313.pyc").write_bytes(b"\0" * 10)
    (tmp_path / "EncryptFunction").mkdir()
    (tmp_path / "EncryptFunction" / "app.py").write_text("x" * 2048)

    artifacts = fb.package_sizes(tmp_path)
    table = fb.package_table(artifacts, tmp_path).splitlines()

    assert [(a.name, a.files, a.compiled) for a in artifacts] == [
        ("CryptoLayer", 2, 1),
        ("EncryptFunction", 1, 0),
    ]
    assert table[2].startswith(
        "| CryptoLayer | 3.00 MiB | 2 | 1 | cryptography 3.00 MiB | <= 25 MiB: meets |"
    )
    assert table[3].startswith("| EncryptFunction | 2.0 KiB | 1 | 0 | — | — |")


def test_a_failed_section_is_reported_and_the_others_kept(fb: ModuleType) -> None:
    report = fb.Report()
    report.attempt("first", lambda: "| table |")

    def broken() -> str:
        raise fb.MeasurementError("no answer")

    report.attempt("second", broken)

    assert report.tables == ["| table |"]
    assert report.failures == ["second not measured: MeasurementError: no answer"]


# --- what make bench says of itself: uncached AesBridge, the same statistic both sides, misses, --json ---------


@pytest.mark.parametrize("name", ["aesbridge-gcm", "aesbridge-cbc"])
def test_aesbridge_rows_come_cached_and_uncached_beside_the_reference(once: ModuleType, name: str) -> None:
    rows = [row for row in once.scheme_rows() if row.scheme.startswith(name + ",")]

    assert [row.scheme for row in rows] == [
        f"{name}, cached (salt reuse, key cache)",
        f"{name}, uncached (one key derivation per value)",
    ]
    assert rows[1].reference == "aes-bridge"


def test_uncached_encryption_draws_a_salt_and_derives_a_key_for_every_value(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sealgate.schemes import aesbridge_kdf

    derivations: list[bytes] = []
    original = aesbridge_kdf.derive

    def counting(passphrase: bytes, salt: bytes, length: int) -> bytes:
        derivations.append(salt)
        return original(passphrase, salt, length)

    timed: list[Any] = []

    def rate(fn: Any) -> float:
        timed.append(fn)
        return 1.0

    monkeypatch.setattr(aesbridge_kdf, "derive", counting)
    monkeypatch.setattr(bench, "rate", rate)
    bench.uncached_row("aesbridge-gcm")
    encrypt, decrypt = timed[:2]

    derivations.clear()
    encrypt()
    encrypt()
    assert len(derivations) == 2, "a key derived for each value"
    assert derivations[0] != derivations[1], "each under a fresh salt"
    derivations.clear()
    decrypt()
    decrypt()
    assert len(derivations) == 2, "a key derivation per value opened, nothing remembered"


def test_whole_processes_are_timed_the_same_way_on_both_sides(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    runs: list[str] = []

    def run(cmd: list[str], **kwargs: Any) -> Any:
        runs.append("ours" if "-m" in cmd else "reference")
        return subprocess.CompletedProcess(cmd, 0, stdout=b"x\n" * 400, stderr=b"")

    monkeypatch.setattr(bench.subprocess, "run", run)
    bench.process_target()

    assert runs == ["ours", "reference"] * bench.PROCESS_RUNS, "same runs, interleaved"


def test_cold_start_misses_name_the_row_and_the_target(fb: ModuleType, tmp_path: Path) -> None:
    targets = [
        fb.ColdTarget("encrypt function", "`e`", [], {}, b"", tmp_path, target=0.35),
        fb.ColdTarget("sign function", "`s`", [], {}, b"", tmp_path, target=0.35),
        fb.ColdTarget(fb.PLAIN_LABEL, "`e`", [], {}, b"", tmp_path),
    ]
    runs = {
        "encrypt function": [fb.ColdRun(0.5, None, None)],
        "sign function": [fb.ColdRun(0.3, None, None)],
        fb.PLAIN_LABEL: [fb.ColdRun(1.0, None, None)],
    }

    figures = fb.cold_figures(targets, runs)

    assert [round(row["ratio"], 2) for row in figures] == [0.5, 0.3, 1.0]
    assert fb.cold_misses(figures) == [
        "cold start: encrypt function at 0.50x the plain handler (target <= 0.35x)"
    ]


def test_main_exits_2_listing_the_misses_and_writes_the_figures(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        bench, "scheme_rows", lambda: [bench.Row("aes-gcm", 2.0, 3.0, "PHP openssl", 1.0, 1.0)]
    )
    monkeypatch.setattr(bench, "process_target", lambda: (0.2, 10.0))
    monkeypatch.setattr(bench, "import_seconds", lambda code, runs=5: 0.05)
    report = bench.function_bench.Report(
        tables=["| cold |"],
        figures={"sqs_batch": {"ratio": 3.0}},
        misses=["sqs batch: ten records in 3.00x one (target <= 1.5x)"],
    )
    monkeypatch.setattr(bench.function_bench, "measure", lambda: report)
    written = tmp_path / "bench.json"

    status = bench.main(["--json", str(written)])

    out = capsys.readouterr().out
    assert status == 2
    assert "Targets missed:\n- sqs batch: ten records in 3.00x one (target <= 1.5x)" in out
    figures = json.loads(written.read_text())
    assert figures["process"]["ratio"] == 50.0
    assert figures["schemes"][0]["scheme"] == "aes-gcm"
    assert figures["sqs_batch"] == {"ratio": 3.0}
    assert figures["misses"] == ["sqs batch: ten records in 3.00x one (target <= 1.5x)"]

    report.misses.clear()
    assert bench.main([]) == 0
    report.failures.append("warm path not measured: MeasurementError: no answer")
    assert bench.main([]) == 1


def test_moto_runs_in_a_process_of_its_own_and_stops(fb: ModuleType) -> None:
    import urllib.request

    moto = fb.MotoProcess()
    endpoint = moto.start()
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=5) as answer:
            assert answer.status == 200
    finally:
        moto.stop()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=2)
