"""``make bench``: throughput of every scheme beside its reference implementation, as Markdown tables.

Each cell is operations per second on 1 KiB values, measured over about BUDGET seconds in this process.
Sealgate's side goes through the scheme registry (:mod:`sealgate.schemes`): every cipher it lists, keyed
by its own ``keygen``, with keys prepared once as a function does at cold start; every signer that signs
outside a profile. The independent implementations are in one table, :data:`REFERENCES`, keyed by scheme
name: the ``aes-bridge`` package (AesBridge), PHP's openssl functions running PayKun's ``encrypt()``
(Laravel envelope) and Netcore's static-IV CBC/GCM, ``joserfc`` (JWE) and Python's ``hmac`` (dLocal). A
scheme without one prints n/a.
The AesBridge rows come twice: as the functions run them (one random salt and its derived key reused for a
while, derived keys of salts already seen remembered: the documented trade-off of
:mod:`sealgate.schemes.aesbridge_kdf`) and uncached, a fresh salt and a 100 000-iteration key derivation for
every value as the reference does (what one value costs when nothing is reused).
The second table times whole processes: ``sealgate encrypt aesbridge-gcm --lines`` on 400 values of 1 KiB
(it reuses one salt, so it derives one key) against the reference package doing the same in one process (400
derivations); both sides the same number of runs, interleaved, median of each. The third, start-up import
times.
The rest come from :mod:`function_bench` (this folder), the three functions as Lambda runs them on moto's
server: cold start and first answer beside a plain handler (``plain_handler.py``), where the imports go, each
route warm, an SQS batch against a slow partner, and the size of ``sam build``'s output. The script exits 1
when any measurement could not be made, 2 when every measurement was made but a target was missed (each miss
is printed at the end); a header line names the machine. ``--json PATH`` also writes every figure to PATH.
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import function_bench  # scripts/ (this script's folder): the functions as Lambda runs them

from sealgate import schemes
from sealgate.schemes.aesbridge_kdf import DecryptionKeys, EncryptionKeys
from sealgate.schemes.base import Cipher, KeySlot

BUDGET = float(os.environ.get("BENCH_SECONDS", "0.4"))
PROCESS_RUNS = 3  # whole-process runs of each side, interleaved
PROCESS_TARGET = 40.0  # x: the reference's time over ours
ROOT = Path(__file__).resolve().parent.parent
VALUE = secrets.token_bytes(768).hex()[:1024].encode()  # 1 KiB of text
PASSPHRASE = "throwaway-bench-passphrase"  # nosec B105 - a throwaway key for benchmarks only
#: what a signer's signature covers besides the secret and the body, by field name (see Signer.signature_fields)
SIGNATURE_FIELDS = {"login": "bench-login", "date": "2018-07-12T13:46:28.629Z"}

#: keygen output (a cipher's, or a signer's plus SIGNATURE_FIELDS), by name
Material = Mapping[str, str]


def rate(fn: Callable[[], object]) -> float:
    """Calls per second of ``fn`` over about BUDGET seconds (at least 3 calls)."""
    fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= BUDGET and calls >= 3:
            return calls / elapsed


def fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


# --- the references: independent implementations, one adapter per scheme ----------------------------------


class Reference:
    """An independent implementation of one scheme, timed on VALUE under the material Sealgate generated.

    ``seal``/``open`` are encrypt/decrypt for a cipher, sign/verify for a signer; :meth:`open_rate` opens
    Sealgate's own output. A rate is None where the reference is missing or does not offer the operation.
    Encryption is timed only for schemes Sealgate encrypts.
    """

    label = "n/a"

    def seal_rate(self, material: Material) -> float | None:
        return None

    def open_rate(self, material: Material, token: str) -> float | None:
        return None

    def token(self, material: Material) -> str | None:
        """A token for a scheme Sealgate only decrypts, made by the reference."""
        return None


def _aes_bridge() -> Any:
    try:
        import aes_bridge
    except ImportError:
        return None
    return aes_bridge


class AesBridge(Reference):
    """The ``aes-bridge`` package's ``encrypt_<mode>``/``decrypt_<mode>`` under the generated passphrase."""

    label = "aes-bridge"

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def _function(self, verb: str) -> Callable[[bytes | str, str], Any] | None:
        package = _aes_bridge()
        return None if package is None else getattr(package, f"{verb}_{self.mode}")

    def seal_rate(self, material: Material) -> float | None:
        encrypt = self._function("encrypt")
        return None if encrypt is None else rate(lambda: encrypt(VALUE, material["passphrase"]))

    def open_rate(self, material: Material, token: str) -> float | None:
        decrypt = self._function("decrypt")
        if decrypt is None:
            return None
        assert decrypt(token, material["passphrase"]) == VALUE
        return rate(lambda: decrypt(token, material["passphrase"]))

    def token(self, material: Material) -> str | None:
        encrypt = self._function("encrypt")
        return None if encrypt is None else encrypt(VALUE, material["passphrase"]).decode("ascii")


PHP_BENCH = r"""
function encrypt($text, $key) {
    $iv = random_bytes(16);
    $value = openssl_encrypt(serialize($text), 'AES-256-CBC', $key, 0, $iv);
    $bIv = base64_encode($iv);
    $mac = hash_hmac('sha256', $bIv.$value, $key);
    $c_arr = ['iv' => $bIv, 'value' => $value, 'mac' => $mac];
    $json = json_encode($c_arr);
    $crypted = base64_encode($json);
    return $crypted;
}
function laravel_decrypt($token, $key) {
    $p = json_decode(base64_decode($token), true);
    $mac = hash_hmac('sha256', $p['iv'].$p['value'], $key);
    if (!hash_equals($mac, $p['mac'])) { throw new Exception('mac'); }
    return unserialize(openssl_decrypt($p['value'], 'AES-256-CBC', $key, 0, base64_decode($p['iv'])));
}
function rate($fn, $budget) {
    $fn(); $n = 0; $t0 = microtime(true);
    do { $fn(); $n++; $dt = microtime(true) - $t0; } while ($dt < $budget || $n < 3);
    return $n / $dt;
}
$b = (float)getenv('BENCH_SECONDS') ?: 0.4;
$v = str_repeat('a', 1024);
$k = str_repeat('k', 32); $iv = str_repeat('i', 16);
$t = encrypt($v, $k);
$c = base64_encode(openssl_encrypt($v, 'aes-256-cbc', $k, OPENSSL_RAW_DATA, $iv));
$gk = random_bytes(32);
$nonce = random_bytes(12); $tag = '';
$g = openssl_encrypt($v, 'aes-256-gcm', $gk, OPENSSL_RAW_DATA, $nonce, $tag);
echo json_encode([
  'laravel_enc' => rate(function() use ($v, $k) { encrypt($v, $k); }, $b),
  'laravel_dec' => rate(function() use ($t, $k) { laravel_decrypt($t, $k); }, $b),
  'cbc_enc' => rate(function() use ($v, $k, $iv) {
      base64_encode(openssl_encrypt($v, 'aes-256-cbc', $k, OPENSSL_RAW_DATA, $iv)); }, $b),
  'cbc_dec' => rate(function() use ($c, $k, $iv) {
      openssl_decrypt(base64_decode($c), 'aes-256-cbc', $k, OPENSSL_RAW_DATA, $iv); }, $b),
  'gcm_enc' => rate(function() use ($v, $gk) { $n = random_bytes(12); $tg = '';
      base64_encode($n . openssl_encrypt($v, 'aes-256-gcm', $gk, OPENSSL_RAW_DATA, $n, $tg) . $tg); }, $b),
  'gcm_dec' => rate(function() use ($g, $gk, $nonce, $tag) {
      openssl_decrypt($g, 'aes-256-gcm', $gk, OPENSSL_RAW_DATA, $nonce, $tag); }, $b),
]);
"""


@functools.cache
def php_rates() -> Mapping[str, float] | None:
    """Rates from one run of PHP_BENCH (its own keys and tokens); None when php is missing."""
    php = shutil.which("php")
    if php is None:
        return None
    answer = subprocess.run([php, "-r", PHP_BENCH], capture_output=True, text=True, check=True, timeout=60)
    return dict(json.loads(answer.stdout))


class Php(Reference):
    """PHP's openssl functions, timed inside PHP on its own 1 KiB value and keys (``<prefix>_enc``/``_dec``)."""

    def __init__(self, label: str, prefix: str) -> None:
        self.label, self.prefix = label, prefix

    def seal_rate(self, material: Material) -> float | None:
        found = php_rates()
        return None if found is None else found[f"{self.prefix}_enc"]

    def open_rate(self, material: Material, token: str) -> float | None:
        found = php_rates()
        return None if found is None else found[f"{self.prefix}_dec"]


class Joserfc(Reference):
    """``joserfc``'s compact JWE, RSA-OAEP-256 + A256GCM, with the generated key pair parsed once."""

    label = "joserfc"
    algorithms = ("RSA-OAEP-256", "A256GCM")

    def seal_rate(self, material: Material) -> float | None:
        try:
            from joserfc import jwe
            from joserfc.jwk import RSAKey
        except ImportError:
            return None
        public = RSAKey.import_key(material["public_key"])
        header = dict(zip(("alg", "enc"), self.algorithms, strict=True))
        return rate(lambda: jwe.encrypt_compact(header, VALUE, public, algorithms=list(self.algorithms)))

    def open_rate(self, material: Material, token: str) -> float | None:
        try:
            from joserfc import jwe
            from joserfc.jwk import RSAKey
        except ImportError:
            return None
        private = RSAKey.import_key(material["private_key"])
        algorithms = list(self.algorithms)
        assert jwe.decrypt_compact(token, private, algorithms=algorithms).plaintext == VALUE
        return rate(lambda: jwe.decrypt_compact(token, private, algorithms=algorithms))


class PythonHmac(Reference):
    """dLocal's signature with Python's ``hmac``: HMAC-SHA256(secret, X-Login + X-Date + body), hex."""

    label = "Python hmac"

    def seal_rate(self, material: Material) -> float | None:
        import hashlib
        import hmac

        secret = material["secret_key"].encode()
        message = material["login"].encode() + material["date"].encode() + VALUE
        return rate(lambda: hmac.new(secret, message, hashlib.sha256).hexdigest())


#: scheme name -> its independent implementation (a scheme missing here prints n/a)
REFERENCES: dict[str, Reference] = {
    "aesbridge-gcm": AesBridge("gcm"),
    "aesbridge-cbc": AesBridge("cbc"),
    "aesbridge-legacy": AesBridge("legacy"),
    "laravel-cbc": Php("PHP (PayKun's encrypt)", "laravel"),
    "aes-cbc-static": Php("PHP openssl", "cbc"),
    "aes-gcm": Php("PHP openssl", "gcm"),
    "jwe": Joserfc(),
    "dlocal-v2": PythonHmac(),
}


# --- Sealgate's side, through the registry -------------------------------------------------------------------


class Row(NamedTuple):
    scheme: str
    ours_seal: float | None
    ours_open: float | None
    reference: str
    reference_seal: float | None
    reference_open: float | None


def _slot_material(slot: KeySlot, material: Material, *, decrypting: bool) -> str:
    """The keygen value a key slot reads: the decrypting one (a public-key scheme's private key) or not."""
    return material[slot.decrypting_value if decrypting else slot.generated]


def prepared_keys(cipher: Cipher[Any], material: Material, *, decrypting: bool) -> Mapping[str, Any]:
    """``cipher``'s keys from its keygen ``material``, prepared once for many values."""
    raw = {slot.name: _slot_material(slot, material, decrypting=decrypting) for slot in cipher.key_slots}
    return cipher.prepare(raw, decrypting=decrypting)


def cipher_row(name: str) -> Row:
    """Encrypt and decrypt rates of cipher ``name`` and of its reference."""
    cipher = schemes.lookup("cipher", name)
    reference = REFERENCES.get(name, Reference())
    options = cipher.options({})
    material = cipher.keygen(options)
    opening = prepared_keys(cipher, material, decrypting=True)
    ours_seal = reference_seal = ours_open = reference_open = None
    if cipher.can_encrypt:
        sealing = prepared_keys(cipher, material, decrypting=False)
        token: str | None = cipher.encrypt(VALUE, sealing, options)
        ours_seal = rate(lambda: cipher.encrypt(VALUE, sealing, options))
        reference_seal = reference.seal_rate(material)
    else:  # decrypt only: open a token the reference made
        token = reference.token(material)
    if token is not None:
        sealed = token
        assert cipher.decrypt(sealed, opening, options) == VALUE
        ours_open = rate(lambda: cipher.decrypt(sealed, opening, options))
        reference_open = reference.open_rate(material, sealed)
    label = name if cipher.can_encrypt else f"{name} (decrypt only)"
    return Row(label, ours_seal, ours_open, reference.label, reference_seal, reference_open)


def signer_row(name: str) -> Row | None:
    """Sign and verify rates of signer ``name`` and of its reference; None if it signs only in a profile."""
    signer = schemes.lookup("signer", name)
    if not signer.signature_fields:
        return None
    reference = REFERENCES.get(name, Reference())
    generated = signer.keygen()
    (secret_text,) = generated.values()
    secret = secret_text.encode()
    fields = {field: SIGNATURE_FIELDS[field] for field, _ in signer.signature_fields}
    presented = signer.signature(secret, fields, VALUE)
    signer.check(secret, fields, VALUE, presented)
    material = {**generated, **fields}
    return Row(
        f"{name} (sign / verify)",
        rate(lambda: signer.signature(secret, fields, VALUE)),
        rate(lambda: signer.check(secret, fields, VALUE, presented)),
        reference.label,
        reference.seal_rate(material),
        reference.open_rate(material, presented),
    )


#: the AesBridge ciphers whose module-level ``encrypt``/``decrypt`` take the key caches as arguments
UNCACHED = {
    "aesbridge-gcm": "sealgate.schemes.aesbridge_gcm",
    "aesbridge-cbc": "sealgate.schemes.aesbridge_cbc",
}


def uncached_row(name: str) -> Row:
    """Cipher ``name`` with nothing reused: every encryption draws a fresh salt and derives its key
    (``EncryptionKeys(max_uses=1)``, as the reference does), every decryption derives its key afresh (an
    empty ``DecryptionKeys`` per value)."""
    module = importlib.import_module(UNCACHED[name])
    cipher = schemes.lookup("cipher", name)
    reference = REFERENCES.get(name, Reference())
    material = cipher.keygen(cipher.options({}))
    passphrase = material["passphrase"]
    token = module.encrypt(VALUE, passphrase, keys=EncryptionKeys(max_uses=1))
    assert module.decrypt(token, passphrase, keys=DecryptionKeys()) == VALUE
    return Row(
        f"{name}, uncached (one key derivation per value)",
        rate(lambda: module.encrypt(VALUE, passphrase, keys=EncryptionKeys(max_uses=1))),
        rate(lambda: module.decrypt(token, passphrase, keys=DecryptionKeys())),
        reference.label,
        reference.seal_rate(material),
        reference.open_rate(material, token),
    )


def scheme_rows() -> list[Row]:
    rows = []
    for name in schemes.names("cipher"):
        row = cipher_row(name)
        if name in UNCACHED:
            rows += [row._replace(scheme=f"{name}, cached (salt reuse, key cache)"), uncached_row(name)]
        else:
            rows.append(row)
    signed = (signer_row(name) for name in schemes.names("signer"))
    return rows + [row for row in signed if row is not None]


# --- whole processes -----------------------------------------------------------------------------------------


def process_target() -> tuple[float, float]:
    """Median seconds of PROCESS_RUNS runs for 400 x 1 KiB: ``sealgate encrypt aesbridge-gcm --lines`` vs the
    reference, whole processes (spawn to exit, the same clock for both)."""
    lines = b"\n".join(secrets.token_hex(512).encode() for _ in range(400)) + b"\n"
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp, "bench.key")
        key_file.write_text(PASSPHRASE + "\n")
        ours_cmd = [
            sys.executable,
            "-m",
            "sealgate",
            "encrypt",
            "aesbridge-gcm",
            "--key-file",
            str(key_file),
            "--lines",
        ]
        ref_code = (
            "import sys, aes_bridge\n"
            f"k = open({str(key_file)!r}).read().rstrip('\\n')\n"
            "out = [aes_bridge.encrypt(line, k) for line in sys.stdin.buffer.read().splitlines()]\n"
            "sys.stdout.buffer.write(b'\\n'.join(out) + b'\\n')\n"
        )
        commands = (ours_cmd, [sys.executable, "-c", ref_code])
        timings: tuple[list[float], list[float]] = ([], [])
        for _ in range(PROCESS_RUNS):  # the same runs of each side, interleaved: same load, same statistic
            for cmd, times in zip(commands, timings, strict=True):
                start = time.perf_counter()
                done = subprocess.run(cmd, input=lines, capture_output=True, check=True)
                times.append(time.perf_counter() - start)
                assert done.stdout.count(b"\n") == 400
    return statistics.median(timings[0]), statistics.median(timings[1])


FUNCTIONS = ("encrypt", "sign", "forward")
CLI_COMMANDS = {
    "sealgate encrypt aes-gcm (1 value)": "import sealgate.cli, sealgate.schemes.aes_gcm",
    "sealgate encrypt jwe (1 value)": "import sealgate.cli, sealgate.schemes.jwe",
}


def function_imports(name: str) -> str:
    """The module-level import statements of ``functions/<name>/app.py``, as source.

    Importing app.py itself runs ``Runtime.start`` (settings from the environment, then Secrets Manager),
    which needs AWS or the local stack and would time the network; so, as before, only what the function
    imports before its cold start is timed. Read from app.py, the list cannot drift from it.
    """
    source = (ROOT / "functions" / name / "app.py").read_text()
    statements = [
        ast.get_source_segment(source, node)
        for node in ast.parse(source).body
        if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and node.module != "__future__")
    ]
    return "\n".join(s for s in statements if s)


def import_seconds(code: str, runs: int = 5) -> float:
    """Best wall time of a fresh interpreter running the import statements ``code``, less an empty one's."""

    def best(code: str) -> float:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times.append(time.perf_counter() - start)
        return min(times)

    return best(code) - best("pass")


def process_section(figures: dict[str, Any], misses: list[str]) -> bool:
    """Print the whole-process table (its figures and a missed target go to the arguments); False if it could
    not be measured."""
    try:
        ours, reference = process_target()
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        print(f"\nprocess target not measured: {type(error).__name__}")
        return False
    ratio = reference / ours
    figures["process"] = {"ours_s": ours, "reference_s": reference, "ratio": ratio, "runs": PROCESS_RUNS}
    verdict = "meets" if ratio >= PROCESS_TARGET else "MISSES"
    if ratio < PROCESS_TARGET:
        misses.append(f"whole process: {ratio:.0f}x the reference (target >= {PROCESS_TARGET:g}x)")
    print(f"\n| whole process, 400 x 1 KiB, aesbridge-gcm (median of {PROCESS_RUNS} each) | seconds |")
    print("|---|---:|")
    print(f"| `sealgate encrypt aesbridge-gcm --lines` (one salt reused: one key derivation) | {ours:.3f} |")
    print(f"| aes-bridge package, one process (a key derivation per value) | {reference:.3f} |")
    print(f"| speed-up (target >= {PROCESS_TARGET:g}x) | {ratio:.0f}x ({verdict} the target) |")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure to PATH as JSON")
    options = parser.parse_args(argv)
    figures: dict[str, Any] = {"machine": function_bench.machine(), "python": sys.version.split()[0]}
    misses: list[str] = []
    print(
        f"# Sealgate benchmarks (1 KiB values, ops/s, ~{BUDGET}s per cell, Python {sys.version.split()[0]})\n"
    )
    print(f"Machine: {figures['machine']}, load average {load_average()}\n")
    print(
        "| scheme | sealgate encrypt | sealgate decrypt | reference | reference encrypt | reference decrypt |"
    )
    print("|---|---:|---:|---|---:|---:|")
    rows = scheme_rows()
    figures["schemes"] = [row._asdict() for row in rows]
    for row in rows:
        print(
            f"| {row.scheme} | {fmt(row.ours_seal)} | {fmt(row.ours_open)} | {row.reference}"
            f" | {fmt(row.reference_seal)} | {fmt(row.reference_open)} |"
        )
    failed = not process_section(figures, misses)
    print("\n| start-up imports (fresh interpreter, best of 5, less an empty one) | ms |")
    print("|---|---:|")
    imports: dict[str, float] = {}
    for name in FUNCTIONS:
        imports[f"{name} function"] = import_seconds(function_imports(name))
        print(f"| {name} function module imports | {imports[f'{name} function'] * 1000:.0f} |")
    for name, code in CLI_COMMANDS.items():
        imports[name] = import_seconds(code)
        print(f"| {name} | {imports[name] * 1000:.0f} |", flush=True)
    figures["imports_s"] = imports
    report = function_bench.measure()
    for table in report.tables:
        print(f"\n{table}")
    for failure in report.failures:
        print(f"\n{failure}")
    misses += report.misses
    figures.update(report.figures)
    figures["misses"] = misses
    figures["failures"] = report.failures
    figures["load_average_after"] = load_average()
    if options.json is not None:
        options.json.write_text(json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8")
    if misses:
        print("\nTargets missed:")
        for miss in misses:
            print(f"- {miss}")
    if failed or report.failures:
        return 1
    return 2 if misses else 0


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (others using the machine bend every figure)."""
    try:
        return ", ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
