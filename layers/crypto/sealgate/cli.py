"""``sealgate`` command line: the integrator's compliance tool over the crypto layer.

Reads stdin, writes stdout, keeps keys off the command line (files only), and imports only the wire format
a command uses, so that a process that encrypts AES never loads ``jwcrypto``.

Exit status: 0 success; 1 authentication failed (MAC, tag or signature mismatch, wrong key, bad padding);
2 bad usage or malformed input. Errors are one line on stderr: ``sealgate: <code>: <message>``; it never
quotes an argument, since a key or plaintext may have been pasted there by mistake. Output is all or
nothing: a refusal prints nothing on stdout (with ``--lines``, the message names the refused line). An
option the scheme does not use is refused, not ignored.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, NoReturn

from sealgate.errors import BadInput, SealgateError

if TYPE_CHECKING:
    import argparse

PROG = "sealgate"

#: scheme -> what ``encrypt``/``decrypt`` accept; the module is imported only when the scheme is used.
SCHEMES: dict[str, str] = {
    "aesbridge-gcm": "AesBridge AES-256-GCM, PBKDF2 passphrase (Infosimples)",
    "aesbridge-cbc": "AesBridge AES-256-CBC + HMAC-SHA256, PBKDF2 passphrase",
    "aesbridge-legacy": "AesBridge legacy OpenSSL 'Salted__' CBC (decrypt only, unauthenticated)",
    "laravel-cbc": "Laravel envelope AES-256-CBC + HMAC-SHA256 around PHP serialize() (PayKun)",
    "aes-cbc-static": "AES-256-CBC, static key and IV, base64 or hex (Netcore 11256/11257)",
    "aes-gcm": "AES-256-GCM, base64 raw key (Netcore 11258)",
    "jwe": "compact JWE RSA-OAEP-256/RSA-OAEP + A256GCM (dLocal card data)",
}
SIGNATURES: dict[str, str] = {"dlocal-v2": "dLocal V2-HMAC-SHA256 request signature"}
KEYGEN_SCHEMES = (*SCHEMES, *SIGNATURES)

EXAMPLES = """\
examples:
  sealgate keygen aes-cbc-static > netcore.json          # a 32-char key and a 16-char IV
  printf '%s' 123.456.789-09 | sealgate encrypt aesbridge-gcm --key-file infosimples.key --urlsafe
  sealgate decrypt laravel-cbc --key-file paykun.key < token.txt
  sealgate encrypt aesbridge-gcm --key-file k --lines < values.txt > tokens.txt
  printf '%s' '{"amount":1}' | sealgate sign dlocal-v2 --key-file dlocal.secret --login L \\
      --date 2018-07-12T13:46:28.629Z

keys are read from files (less one trailing newline), never from arguments.
exit status: 0 ok, 1 authentication failed, 2 bad usage or malformed input.
"""


class UsageError(SealgateError):
    code = "usage"
    default_message = "bad usage"


#: argparse messages that quote what was typed; the quoted value may be a key or a plaintext pasted by mistake.
_ECHOED_VALUES = (
    (r"invalid choice: .*? \(choose from", "invalid choice (choose from"),
    (r"unrecognized arguments: .*", "unrecognized arguments"),
    (r"ambiguous option: .*? could match", "ambiguous option, could match"),
    (r"ignored explicit argument .*", "an option that takes no value was given one"),
)

#: options each scheme takes besides ``--lines``; any other one is refused rather than silently ignored.
_SCHEME_OPTIONS: dict[str, frozenset[str]] = {
    "aesbridge-gcm": frozenset({"key_file", "urlsafe"}),
    "aesbridge-cbc": frozenset({"key_file", "urlsafe"}),
    "aesbridge-legacy": frozenset({"key_file"}),
    "laravel-cbc": frozenset({"key_file"}),
    "aes-cbc-static": frozenset({"key_file", "iv_file", "encoding"}),
    "aes-gcm": frozenset({"key_file"}),
    "jwe": frozenset({"public_key", "private_key", "alg"}),
}
_SCHEME_OPTION_NAMES = ("key_file", "iv_file", "encoding", "urlsafe", "public_key", "private_key", "alg")
_LINE_BREAKS = (b"\n", b"\r")


def _without_values(message: str) -> str:
    import re

    for pattern, replacement in _ECHOED_VALUES:
        message = re.sub(pattern, replacement, message)
    return message


class _Parser:
    """Builds the argparse tree lazily (argparse costs a few milliseconds to import)."""

    @staticmethod
    def build() -> argparse.ArgumentParser:
        import argparse

        class OneLineParser(argparse.ArgumentParser):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                kwargs.setdefault("allow_abbrev", False)  # `--key X` must not quietly mean `--key-file X`
                super().__init__(*args, **kwargs)

            def error(self, message: str) -> NoReturn:
                raise UsageError(f"{_without_values(message)} (see '{self.prog} --help')")

        parser = OneLineParser(
            prog=PROG,
            description="Encrypt, decrypt, sign and verify the way Sealgate's partners expect, byte for byte.",
            epilog=EXAMPLES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        from sealgate import __version__

        parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
        sub = parser.add_subparsers(
            dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser
        )
        scheme_help = "; ".join(f"{k}: {v}" for k, v in SCHEMES.items())

        def key_options(p: argparse.ArgumentParser) -> None:
            p.add_argument("--key-file", metavar="PATH", help="file holding the key or passphrase")
            p.add_argument(
                "--iv-file", metavar="PATH", help="file holding the 16-character IV (aes-cbc-static)"
            )
            p.add_argument("--encoding", choices=("base64", "hex"), help="aes-cbc-static (default base64)")
            p.add_argument(
                "--lines", action="store_true", help="each stdin line is one value; one line out each"
            )

        enc = sub.add_parser(
            "encrypt", help="plaintext bytes on stdin -> token + newline", epilog=scheme_help
        )
        enc.add_argument("scheme", choices=[s for s in SCHEMES if s != "aesbridge-legacy"], metavar="SCHEME")
        key_options(enc)
        enc.add_argument("--public-key", metavar="PATH", help="recipient RSA public key, PEM or JWK (jwe)")
        enc.add_argument("--alg", choices=("RSA-OAEP-256", "RSA-OAEP"), help="jwe (default RSA-OAEP-256)")
        enc.add_argument("--urlsafe", action="store_true", help="aesbridge: Infosimples form (-_ and no '=')")

        dec = sub.add_parser("decrypt", help="token on stdin -> plaintext bytes, exactly", epilog=scheme_help)
        dec.add_argument("scheme", choices=list(SCHEMES), metavar="SCHEME")
        key_options(dec)
        dec.add_argument("--private-key", metavar="PATH", help="RSA private key, PEM or JWK (jwe)")

        for name, what in (
            ("sign", "body on stdin -> Authorization header value"),
            ("verify", "body on stdin, --signature -> exit 0 valid, 1 not"),
        ):
            p = sub.add_parser(name, help=what)
            p.add_argument("scheme", choices=list(SIGNATURES), metavar="SCHEME")
            p.add_argument("--key-file", metavar="PATH", help="file holding the secret key")
            p.add_argument("--login", required=True, help="X-Login")
            p.add_argument("--date", required=True, help="X-Date, e.g. 2018-07-12T13:46:28.629Z")
            if name == "verify":
                p.add_argument("--signature", required=True, help="Authorization value or bare hex")

        kg = sub.add_parser("keygen", help="fresh key material as JSON")
        kg.add_argument("scheme", choices=list(KEYGEN_SCHEMES), metavar="SCHEME")
        return parser


def read_key_file(path: str | None, what: str = "--key-file") -> bytes:
    """The key as the file holds it, less one trailing newline (``\\n`` or ``\\r\\n``)."""
    if not path:
        raise UsageError(f"{what} is required for this scheme")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        raise UsageError(f"cannot read {what}") from None
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    return data


def _check_options(args: argparse.Namespace) -> None:
    """Refuse an option the scheme does not use: ignoring ``--urlsafe`` or ``--encoding`` would mislead."""
    allowed = _SCHEME_OPTIONS[args.scheme]
    for name in _SCHEME_OPTION_NAMES:
        if getattr(args, name, None) not in (None, False) and name not in allowed:
            raise UsageError(f"--{name.replace('_', '-')} does not apply to {args.scheme}")


def _token_text(data: bytes) -> str:
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        from sealgate.errors import BadToken

        raise BadToken("token is not ASCII text") from None


def _utf8_argument(value: str, what: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"{what} is not UTF-8") from None


def _values(stdin: IO[bytes], lines: bool, *, tokens: bool) -> Iterator[bytes]:
    data = stdin.read()
    if not lines:
        yield data.strip() if tokens else data
        return
    for line in data.splitlines():
        yield line.strip() if tokens else line


def _each(values: Iterator[bytes], convert: Callable[[bytes], bytes], lines: bool) -> bytes:
    """All outputs, or the first refusal (naming its line with ``--lines``): never a partial stdout."""
    out: list[bytes] = []
    for number, value in enumerate(values, 1):
        try:
            out.append(convert(value))
        except SealgateError as error:
            if lines:
                error.message = f"line {number}: {error.message}"
            raise
    return b"".join(out)


def _encryptor(args: argparse.Namespace) -> Callable[[bytes], str]:
    scheme = args.scheme
    if scheme in ("aesbridge-gcm", "aesbridge-cbc"):
        if scheme == "aesbridge-gcm":
            from sealgate.schemes import aesbridge_gcm as bridge
        else:
            from sealgate import aesbridge_cbc as bridge  # type: ignore[no-redef]
        passphrase = read_key_file(args.key_file)
        return lambda value: bridge.encrypt(value, passphrase, urlsafe=args.urlsafe)
    if scheme == "laravel-cbc":
        from sealgate.schemes import laravel_cbc

        key = laravel_cbc.parse_key(read_key_file(args.key_file))
        return lambda value: laravel_cbc.encrypt(value, key)
    if scheme == "aes-cbc-static":
        from sealgate.schemes import aes_cbc_static

        key, iv = read_key_file(args.key_file), read_key_file(args.iv_file, "--iv-file")
        return lambda value: aes_cbc_static.encrypt(value, key, iv, encoding=args.encoding or "base64")
    if scheme == "aes-gcm":
        from sealgate.schemes import aes_gcm

        raw = read_key_file(args.key_file)
        return lambda value: aes_gcm.encrypt(value, raw)
    if scheme == "jwe":
        from sealgate.schemes import jwe

        # Loaded once: a --lines run must not parse and validate the RSA key for every value.
        public = jwe.load_key(read_key_file(args.public_key, "--public-key"))
        return lambda value: jwe.encrypt(value, public, alg=args.alg or "RSA-OAEP-256")
    raise UsageError("scheme cannot encrypt")  # pragma: no cover - argparse choices


def _decryptor(args: argparse.Namespace) -> Callable[[bytes], bytes]:
    scheme = args.scheme
    if scheme in ("aesbridge-gcm", "aesbridge-cbc", "aesbridge-legacy"):
        if scheme == "aesbridge-gcm":
            from sealgate.schemes import aesbridge_gcm as bridge
        elif scheme == "aesbridge-cbc":
            from sealgate import aesbridge_cbc as bridge  # type: ignore[no-redef]
        else:
            from sealgate import aesbridge_legacy as bridge  # type: ignore[no-redef]
        passphrase = read_key_file(args.key_file)
        return lambda token: bridge.decrypt(token, passphrase)
    if scheme == "laravel-cbc":
        from sealgate.schemes import laravel_cbc

        key = laravel_cbc.parse_key(read_key_file(args.key_file))
        return lambda token: laravel_cbc.decrypt(token, key)
    if scheme == "aes-cbc-static":
        from sealgate.schemes import aes_cbc_static

        key, iv = read_key_file(args.key_file), read_key_file(args.iv_file, "--iv-file")
        return lambda token: aes_cbc_static.decrypt(token, key, iv, encoding=args.encoding or "base64")
    if scheme == "aes-gcm":
        from sealgate.schemes import aes_gcm

        raw = read_key_file(args.key_file)
        return lambda token: aes_gcm.decrypt(token, raw)
    if scheme == "jwe":
        from sealgate.schemes import jwe

        private = jwe.load_key(read_key_file(args.private_key, "--private-key"))
        return lambda token: jwe.decrypt(_token_text(token), private)
    raise UsageError("unknown scheme")  # pragma: no cover - argparse choices


def _keygen(scheme: str) -> dict[str, str]:
    import secrets

    if scheme.startswith("aesbridge-"):
        return {"scheme": scheme, "passphrase": secrets.token_urlsafe(32)}
    if scheme == "laravel-cbc":
        from sealgate.codec import b64encode

        return {"scheme": scheme, "key": "base64:" + b64encode(secrets.token_bytes(32))}
    if scheme == "aes-cbc-static":
        from sealgate.schemes import aes_cbc_static

        key, iv = aes_cbc_static.generate_key_iv()
        return {"scheme": scheme, "key": key, "iv": iv}
    if scheme == "aes-gcm":
        from sealgate.schemes import aes_gcm

        return {"scheme": scheme, "key": aes_gcm.generate_key()}
    if scheme == "jwe":
        from sealgate.schemes import jwe

        private, public = jwe.generate_keypair()
        return {"scheme": scheme, "private_key": private, "public_key": public}
    if scheme == "dlocal-v2":
        return {"scheme": scheme, "secret_key": secrets.token_urlsafe(32)}
    raise UsageError("unknown scheme")  # pragma: no cover - argparse choices


def run(argv: Sequence[str], stdin: IO[bytes], stdout: IO[bytes]) -> int:
    """Run one command; raises :class:`SealgateError` for every refusal."""
    args = _Parser.build().parse_args(list(argv))
    if args.command in ("encrypt", "decrypt"):
        _check_options(args)
    if args.command == "encrypt":
        encrypt = _encryptor(args)
        values = _values(stdin, args.lines, tokens=False)
        stdout.write(_each(values, lambda value: encrypt(value).encode("ascii") + b"\n", args.lines))
        return 0
    if args.command == "decrypt":
        decrypt = _decryptor(args)

        def opened(token: bytes) -> bytes:
            if not token:
                raise BadInput("empty line where a token was expected" if args.lines else "no token on stdin")
            plaintext = decrypt(token)
            if not args.lines:
                return plaintext
            if any(mark in plaintext for mark in _LINE_BREAKS):
                raise BadInput("plaintext holds a line break; decrypt this token without --lines")
            return plaintext + b"\n"

        stdout.write(_each(_values(stdin, args.lines, tokens=True), opened, args.lines))
        return 0
    if args.command in ("sign", "verify"):
        from sealgate.schemes import dlocal_v2

        _utf8_argument(args.login, "--login")
        _utf8_argument(args.date, "--date")
        secret = read_key_file(args.key_file)
        body = stdin.read()
        if args.command == "sign":
            header = dlocal_v2.authorization(secret, args.login, args.date, body)
            stdout.write(header.encode("ascii") + b"\n")
            return 0
        dlocal_v2.verify(secret, args.login, args.date, body, args.signature)
        return 0
    import json

    stdout.write(json.dumps(_keygen(args.scheme), indent=2).encode("utf-8") + b"\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: maps every refusal to one stderr line and an exit status."""
    try:
        status = run(sys.argv[1:] if argv is None else argv, sys.stdin.buffer, sys.stdout.buffer)
        sys.stdout.flush()
        return status
    except SealgateError as error:
        sys.stderr.write(f"{PROG}: {error.code}: {error.message}\n")
        return error.exit_status
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        sys.stderr.write(f"{PROG}: internal_error: unexpected {type(error).__name__}\n")
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
