"""``make bench``: throughput of every scheme beside its reference implementation, as a Markdown table.

Each cell is operations per second on 1 KiB values, measured over about BUDGET seconds in this process.
References: the ``aes-bridge`` package (AesBridge), PHP's openssl functions running PayKun's ``encrypt()``
(Laravel envelope) and Netcore's static-IV CBC/GCM, ``joserfc`` (JWE) and Python's ``hmac`` (dLocal).
The last table times whole processes: ``sealgate encrypt aesbridge-gcm --lines`` on 400 values of 1 KiB
against the reference package doing the same in one process.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BUDGET = float(os.environ.get("BENCH_SECONDS", "0.4"))
ROOT = Path(__file__).resolve().parent.parent
VALUE = secrets.token_bytes(768).hex()[:1024].encode()  # 1 KiB of text
PASSPHRASE = "throwaway-bench-passphrase"  # throwaway key for benchmarks only


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


def php_rates(code: str) -> dict[str, float] | None:
    """Run a PHP benchmark that prints a JSON object of rates; None when php is missing."""
    php = shutil.which("php")
    if php is None:
        return None
    answer = subprocess.run([php, "-r", code], capture_output=True, text=True, check=True, timeout=60)
    return dict(json.loads(answer.stdout))


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


def scheme_rows() -> list[tuple[str, float, float, str, float | None, float | None]]:
    import hashlib
    import hmac

    from sealgate import (
        aesbridge_cbc,
        aesbridge_gcm,
        aesbridge_legacy,
        jwe,
        dlocal_v2,
        laravel_cbc,
        aes_gcm,
        aes_cbc_static,
    )

    rows: list[tuple[str, float, float, str, float | None, float | None]] = []
    try:
        import aes_bridge
    except ImportError:
        aes_bridge = None

    gcm_token = aesbridge_gcm.encrypt(VALUE, PASSPHRASE)
    cbc_token = aesbridge_cbc.encrypt(VALUE, PASSPHRASE)
    ref = aes_bridge
    rows.append(
        (
            "aesbridge-gcm",
            rate(lambda: aesbridge_gcm.encrypt(VALUE, PASSPHRASE)),
            rate(lambda: aesbridge_gcm.decrypt(gcm_token, PASSPHRASE)),
            "aes-bridge",
            rate(lambda: ref.encrypt_gcm(VALUE, PASSPHRASE)) if ref else None,
            rate(lambda: ref.decrypt_gcm(gcm_token, PASSPHRASE)) if ref else None,
        )
    )
    rows.append(
        (
            "aesbridge-cbc",
            rate(lambda: aesbridge_cbc.encrypt(VALUE, PASSPHRASE)),
            rate(lambda: aesbridge_cbc.decrypt(cbc_token, PASSPHRASE)),
            "aes-bridge",
            rate(lambda: ref.encrypt_cbc(VALUE, PASSPHRASE)) if ref else None,
            rate(lambda: ref.decrypt_cbc(cbc_token, PASSPHRASE)) if ref else None,
        )
    )
    if ref:
        legacy_token = ref.encrypt_legacy(VALUE, PASSPHRASE)
        rows.append(
            (
                "aesbridge-legacy (decrypt only)",
                float("nan"),
                rate(lambda: aesbridge_legacy.decrypt(legacy_token, PASSPHRASE)),
                "aes-bridge",
                None,
                rate(lambda: ref.decrypt_legacy(legacy_token, PASSPHRASE)),
            )
        )

    php = php_rates(PHP_BENCH)
    lkey = b"k" * 32
    ltoken = laravel_cbc.encrypt(VALUE, lkey)
    rows.append(
        (
            "laravel-cbc",
            rate(lambda: laravel_cbc.encrypt(VALUE, lkey)),
            rate(lambda: laravel_cbc.decrypt(ltoken, lkey)),
            "PHP (PayKun's encrypt)",
            php and php["laravel_enc"],
            php and php["laravel_dec"],
        )
    )
    skey, siv = aes_cbc_static.generate_key_iv()
    stoken = aes_cbc_static.encrypt(VALUE, skey, siv)
    rows.append(
        (
            "aes-cbc-static",
            rate(lambda: aes_cbc_static.encrypt(VALUE, skey, siv)),
            rate(lambda: aes_cbc_static.decrypt(stoken, skey, siv)),
            "PHP openssl",
            php and php["cbc_enc"],
            php and php["cbc_dec"],
        )
    )
    gkey = aes_gcm.generate_key()
    gtoken = aes_gcm.encrypt(VALUE, gkey)
    rows.append(
        (
            "aes-gcm",
            rate(lambda: aes_gcm.encrypt(VALUE, gkey)),
            rate(lambda: aes_gcm.decrypt(gtoken, gkey)),
            "PHP openssl",
            php and php["gcm_enc"],
            php and php["gcm_dec"],
        )
    )

    private_pem, public_pem = jwe.generate_keypair()
    # Keys are parsed once, as a function does at cold start (parsing a private PEM costs ~50 ms).
    private, public = jwe.load_key(private_pem), jwe.load_key(public_pem)
    jtoken = jwe.encrypt(VALUE, public)
    joserfc_enc = joserfc_dec = None
    try:
        from joserfc import jwe
        from joserfc.jwk import RSAKey

        rsa_public, rsa_private = RSAKey.import_key(public_pem), RSAKey.import_key(private_pem)
        header = {"alg": "RSA-OAEP-256", "enc": "A256GCM"}
        algs = ["RSA-OAEP-256", "A256GCM"]
        joserfc_enc = rate(lambda: jwe.encrypt_compact(header, VALUE, rsa_public, algorithms=algs))
        joserfc_dec = rate(lambda: jwe.decrypt_compact(jtoken, rsa_private, algorithms=algs))
    except ImportError:
        pass
    rows.append(
        (
            "jwe (RSA-OAEP-256 + A256GCM)",
            rate(lambda: jwe.encrypt(VALUE, public)),
            rate(lambda: jwe.decrypt(jtoken, private)),
            "joserfc",
            joserfc_enc,
            joserfc_dec,
        )
    )
    secret, date = "throwaway-bench-secret", "2018-07-12T13:46:28.629Z"
    header_value = dlocal_v2.authorization(secret, "login", date, VALUE)
    rows.append(
        (
            "dlocal-v2 (sign / verify)",
            rate(lambda: dlocal_v2.authorization(secret, "login", date, VALUE)),
            rate(lambda: dlocal_v2.verify(secret, "login", date, VALUE, header_value)),
            "Python hmac",
            rate(
                lambda: hmac.new(
                    secret.encode(), b"login" + date.encode() + VALUE, hashlib.sha256
                ).hexdigest()
            ),
            None,
        )
    )
    return rows


def process_target() -> tuple[float, float]:
    """Seconds for 400 x 1 KiB: ``sealgate encrypt aesbridge-gcm --lines`` vs the reference, whole processes."""
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
        timings = []
        for cmd in (ours_cmd, [sys.executable, "-c", ref_code]):
            best = float("inf")
            for _ in range(3 if cmd is ours_cmd else 1):
                start = time.perf_counter()
                done = subprocess.run(cmd, input=lines, capture_output=True, check=True)
                best = min(best, time.perf_counter() - start)
                assert done.stdout.count(b"\n") == 400
            timings.append(best)
    return timings[0], timings[1]


#: what each function's app.py imports before its handler runs (its module-level imports, not the cold start's
#: Secrets Manager calls, which need AWS).
FUNCTION_IMPORTS = {
    "encrypt": "sealgate.http_api, sealgate.gateway, sealgate.telemetry",
    "sign": "sealgate.http_api, sealgate.gateway, sealgate.telemetry",
    "forward": "sealgate.forwarding, sealgate.http_api, sealgate.gateway, sealgate.telemetry",
}
CLI_COMMANDS = {
    "sealgate encrypt aes-gcm (1 value)": "sealgate.cli, sealgate.schemes.aes_gcm",
    "sealgate encrypt jwe (1 value)": "sealgate.cli, sealgate.schemes.jwe",
}


def import_seconds(modules: str, runs: int = 5) -> float:
    """Best wall time of a fresh interpreter importing ``modules``, less an empty interpreter's."""

    def best(code: str) -> float:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times.append(time.perf_counter() - start)
        return min(times)

    return best(f"import {modules}") - best("pass")


def main() -> int:
    print(
        f"# Sealgate benchmarks (1 KiB values, ops/s, ~{BUDGET}s per cell, Python {sys.version.split()[0]})\n"
    )
    print(
        "| scheme | sealgate encrypt | sealgate decrypt | reference | reference encrypt | reference decrypt |"
    )
    print("|---|---:|---:|---|---:|---:|")
    for name, enc, dec, ref, ref_enc, ref_dec in scheme_rows():
        enc_text = "n/a" if math.isnan(enc) else fmt(enc)  # NaN: decrypt-only scheme
        print(f"| {name} | {enc_text} | {fmt(dec)} | {ref} | {fmt(ref_enc)} | {fmt(ref_dec)} |")
    try:
        ours, reference = process_target()
    except (subprocess.CalledProcessError, FileNotFoundError) as error:
        print(f"\nprocess target not measured: {type(error).__name__}")
        return 1
    ratio = reference / ours
    verdict = "meets" if ratio >= 40 else "MISSES"
    print("\n| whole process, 400 x 1 KiB, aesbridge-gcm | seconds |")
    print("|---|---:|")
    print(f"| `sealgate encrypt aesbridge-gcm --lines` | {ours:.3f} |")
    print(f"| aes-bridge package, one process | {reference:.3f} |")
    print(f"| speed-up (target >= 40x) | {ratio:.0f}x ({verdict} the target) |")
    print("\n| start-up imports (fresh interpreter, best of 5, less an empty one) | ms |")
    print("|---|---:|")
    for name, modules in FUNCTION_IMPORTS.items():
        print(f"| {name} function module imports | {import_seconds(modules) * 1000:.0f} |")
    for name, modules in CLI_COMMANDS.items():
        print(f"| {name} | {import_seconds(modules) * 1000:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
