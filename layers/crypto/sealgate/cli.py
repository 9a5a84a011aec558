"""``sealgate`` command line: the integrator's compliance tool over the crypto layer.

Reads stdin, writes stdout, keeps keys off the command line (files only), and imports only the wire format
a command uses, so that a process that encrypts AES never loads ``jwcrypto``.

Every scheme, its summary, the key files it reads, its options and its key generation come from the scheme
registry (:mod:`sealgate.schemes`); this module never branches on a scheme's name. argv is read in two
steps: the command and the scheme's name first, then that scheme's own parser (its key slots and the fields
of its options).

Exit status: 0 success; 1 authentication failed (MAC, tag or signature mismatch, wrong key, bad padding);
2 bad usage or malformed input. Errors are one line on stderr: ``sealgate: <code>: <message>``; it never
quotes an argument, since a key or plaintext may have been pasted there by mistake. Output is all or
nothing: a refusal prints nothing on stdout (with ``--lines``, the message names the refused line). An
option the scheme does not use is refused, not ignored.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, Literal, NoReturn

from sealgate import schemes
from sealgate.errors import BadInput, SealgateError

if TYPE_CHECKING:
    import argparse

    from sealgate.schemes.base import Cipher, Signer

    Scheme = Cipher[Any] | Signer[Any]

PROG = "sealgate"

#: the kinds of scheme the command line runs
Kind = Literal["cipher", "signer"]

#: command -> (what it does, the kinds of scheme it takes in the order a name is looked up)
COMMANDS: dict[str, tuple[str, tuple[Kind, ...]]] = {
    "encrypt": ("plaintext bytes on stdin -> token + newline", ("cipher",)),
    "decrypt": ("token on stdin -> plaintext bytes, exactly", ("cipher",)),
    "sign": ("body on stdin -> signature (e.g. Authorization header value) + newline", ("signer",)),
    "verify": ("body on stdin, --signature -> exit 0 valid, 1 not", ("signer",)),
    "keygen": ("fresh key material as JSON", ("cipher", "signer")),
}

EXAMPLES = """\
examples:
  sealgate keygen aes-cbc-static > netcore.json          # a 32-char key and a 16-char IV
  printf '%s' 123.456.789-09 | sealgate encrypt aesbridge-gcm --key-file infosimples.key --urlsafe
  sealgate decrypt laravel-cbc --key-file paykun.key < token.txt
  sealgate encrypt aesbridge-gcm --key-file k --lines < values.txt > tokens.txt
  printf '%s' '{"amount":1}' | sealgate sign dlocal-v2 --key-file dlocal.secret --login L \\
      --date 2018-07-12T13:46:28.629Z
  sealgate encrypt SCHEME --help                          # the key files and options SCHEME takes

keys are read from files (less one trailing newline), never from arguments.
exit status: 0 ok, 1 authentication failed, 2 bad usage or malformed input.
"""

#: argparse destinations: key slots, options and signature fields, kept apart from ``scheme`` and ``lines``
_KEY, _OPTION, _FIELD = "key:", "option:", "field:"


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
_LINE_BREAKS = (b"\n", b"\r")


def _without_values(message: str) -> str:
    import re

    for pattern, replacement in _ECHOED_VALUES:
        message = re.sub(pattern, replacement, message)
    return message


# --- which scheme a command runs ----------------------------------------------------------------------------


def _takes(command: str, scheme: Scheme) -> bool:
    """Whether ``command`` can run ``scheme``: a decrypt-only cipher does not encrypt, and a signer with no
    :attr:`~sealgate.schemes.base.Signer.signature_fields` signs only through a partner profile."""
    from sealgate.schemes.base import Cipher

    if isinstance(scheme, Cipher):
        return scheme.can_encrypt or command != "encrypt"
    return bool(scheme.signature_fields)


def _named(argv: Sequence[str]) -> tuple[str | None, Scheme | None]:
    """The command, and the scheme named after it (the first word that is one of its kinds' names), looked up.

    Only that scheme's module is imported. ``None`` where argv names no command or no scheme: the generic
    parser then shows the help or refuses the argv.
    """
    words = [word for word in argv if not word.startswith("-")]
    if not words or words[0] not in COMMANDS:
        return None, None
    command = words[0]
    for word in words[1:]:
        for kind in COMMANDS[command][1]:
            if word in schemes.names(kind):
                scheme = _lookup(kind, word)
                if not _takes(command, scheme):
                    raise UsageError(f"{command} does not take {scheme.name} (see '{PROG} {command} --help')")
                return command, scheme
    return command, None


def _lookup(kind: Kind, name: str) -> Scheme:
    return schemes.lookup("cipher", name) if kind == "cipher" else schemes.lookup("signer", name)


def offered(command: str) -> dict[str, str]:
    """Name -> summary of the schemes ``command`` offers, for its help and its refusals.

    Ciphers come straight from the registry, importing nothing (the one that only decrypts says so in its
    summary); signers are asked whether they sign outside a profile, which imports their (light) modules.
    """
    found: dict[str, str] = {}
    for kind in COMMANDS[command][1]:
        for name in schemes.names(kind):
            if kind == "cipher" or _takes(command, _lookup(kind, name)):
                found[name] = schemes.summary(kind, name)
    return found


# --- what a scheme takes on the command line ----------------------------------------------------------------

#: (flag, argparse keywords)
Argument = tuple[str, dict[str, Any]]


def _arguments(command: str, scheme: Scheme) -> list[Argument]:
    """The options ``command`` takes with ``scheme``: the one place that turns a scheme into flags."""
    from sealgate.schemes.base import Cipher

    if command == "keygen":
        return []
    if not isinstance(scheme, Cipher):
        found: list[Argument] = [
            (
                "--key-file",
                {"metavar": "PATH", "help": "file holding the secret key", "dest": _KEY + "secret"},
            )
        ]
        found += [
            (f"--{name}", {"required": True, "help": what, "metavar": name.upper(), "dest": _FIELD + name})
            for name, what in scheme.signature_fields
        ]
        if command == "verify":
            found.append(
                (
                    "--signature",
                    {
                        "required": True,
                        "help": "the signature to check, as sent",
                        "metavar": "SIGNATURE",
                        "dest": "presented",
                    },
                )
            )
        return found
    decrypting = command == "decrypt"
    found = [
        (
            slot.decrypt_flag if decrypting else slot.encrypt_flag,
            {"metavar": "PATH", "help": slot.help, "dest": _KEY + slot.name},
        )
        for slot in scheme.key_slots
    ]
    # An option that only shapes what encryption writes is refused by decrypt rather than ignored.
    found += _option_arguments(scheme, decrypting=decrypting)
    found.append(
        ("--lines", {"action": "store_true", "help": "each stdin line is one value; one line out each"})
    )
    return found


def _option_arguments(cipher: Cipher[Any], *, decrypting: bool = False) -> list[Argument]:
    """One flag per field of the cipher's options: a bool that defaults to False is a switch, a str or int
    takes a value (one of its ``choices`` where it has them). Only what was typed reaches ``parse``, so the
    defaults stay the scheme's own. ``decrypting`` leaves out the options marked ``encrypt_only``."""
    import argparse
    import dataclasses
    import typing

    hints = typing.get_type_hints(cipher.options_type)
    found: list[Argument] = []
    for spec in dataclasses.fields(cipher.options_type):
        if decrypting and spec.metadata.get("encrypt_only"):
            continue
        keywords: dict[str, Any] = {
            "help": spec.metadata.get("help"),
            "default": argparse.SUPPRESS,
            "dest": _OPTION + spec.name,
        }
        hint = hints[spec.name]
        if hint is bool and spec.default is False:
            keywords["action"] = "store_true"
        elif hint is str or hint is int:
            keywords["type"] = hint
            keywords["metavar"] = spec.name.upper()
            if spec.metadata.get("choices") is not None:
                keywords["choices"] = tuple(spec.metadata["choices"])
                del keywords["metavar"]
        else:  # pragma: no cover - a cipher declared an option the command line cannot spell
            raise TypeError(f"{cipher.name}: option {spec.name!r} of type {hint!r} has no command-line form")
        found.append(("--" + spec.name.replace("_", "-"), keywords))
    return found


def _known_flags() -> frozenset[str]:
    """Every flag some command takes with some scheme (imports every scheme: only to word a refusal)."""
    flags: set[str] = set()
    for command, (_, kinds) in COMMANDS.items():
        for kind in kinds:
            for name in schemes.names(kind):
                try:
                    scheme = _lookup(kind, name)
                except ImportError:  # pragma: no cover - an optional dependency is missing
                    continue
                if _takes(command, scheme):
                    flags.update(flag for flag, _ in _arguments(command, scheme))
    return frozenset(flags)


def _refuse_extras(extras: Sequence[str], command: str, scheme: Scheme) -> None:
    """Refuse what the scheme's parser did not take, naming a flag only where it is one (never a value)."""
    if not extras:
        return
    known = _known_flags()
    for word in extras:
        flag = word.split("=", 1)[0]
        if flag in known:
            raise UsageError(f"{flag} does not apply to {command} {scheme.name}")
    raise UsageError(f"unrecognized arguments (see '{PROG} {command} {scheme.name} --help')")


# --- the parser ---------------------------------------------------------------------------------------------


def _parser(command: str | None, scheme: Scheme | None) -> argparse.ArgumentParser:
    """The parser for ``command`` with ``scheme`` (argparse costs a few milliseconds, so it is built lazily).

    Other commands get only their one-line help; without a scheme, ``command`` lists the schemes it offers.
    """
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
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)
    for name, (what, _) in COMMANDS.items():
        if name != command:
            sub.add_parser(name, help=what)
            continue
        if scheme is None:
            listing = offered(name)
            lines = "\n".join(f"  {scheme_name:<18} {summary}" for scheme_name, summary in listing.items())
            chosen = sub.add_parser(
                name,
                help=what,
                description=what,
                epilog=f"schemes:\n{lines}\n\nsee '{PROG} {name} SCHEME --help' for what SCHEME takes",
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
            chosen.add_argument("scheme", choices=list(listing), metavar="SCHEME")
            continue
        chosen = sub.add_parser(
            name,
            help=what,
            description=f"{what}\n\n{scheme.name}: {schemes.summary(_kind_of(scheme), scheme.name)}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        chosen.add_argument("scheme", choices=[scheme.name], metavar="SCHEME")
        for flag, keywords in _arguments(name, scheme):
            chosen.add_argument(flag, **keywords)
    return parser


def _kind_of(scheme: Scheme) -> Kind:
    from sealgate.schemes.base import Cipher

    return "cipher" if isinstance(scheme, Cipher) else "signer"


# --- reading and writing ------------------------------------------------------------------------------------


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


# --- the commands -------------------------------------------------------------------------------------------


def _crypt(cipher: Cipher[Any], args: argparse.Namespace, stdin: IO[bytes], stdout: IO[bytes]) -> int:
    from sealgate.schemes.base import OptionError

    decrypting = args.command == "decrypt"
    given = {
        dest.removeprefix(_OPTION): value for dest, value in vars(args).items() if dest.startswith(_OPTION)
    }
    try:
        options = cipher.options(given, where=cipher.name)
    except OptionError as error:
        raise UsageError(error.message) from None
    keys = {
        slot.name: read_key_file(
            getattr(args, _KEY + slot.name), slot.decrypt_flag if decrypting else slot.encrypt_flag
        )
        for slot in cipher.key_slots
    }
    # Once per command: a --lines run must not parse and validate an RSA key for every value.
    prepared = cipher.prepare(keys, decrypting=decrypting)
    if not decrypting:

        def sealed(value: bytes) -> bytes:
            return cipher.encrypt(value, prepared, options).encode("ascii") + b"\n"

        stdout.write(_each(_values(stdin, args.lines, tokens=False), sealed, args.lines))
        return 0

    def opened(token: bytes) -> bytes:
        if not token:
            raise BadInput("empty line where a token was expected" if args.lines else "no token on stdin")
        plaintext = cipher.decrypt(token, prepared, options)
        if not args.lines:
            return plaintext
        if any(mark in plaintext for mark in _LINE_BREAKS):
            raise BadInput("plaintext holds a line break; decrypt this token without --lines")
        return plaintext + b"\n"

    stdout.write(_each(_values(stdin, args.lines, tokens=True), opened, args.lines))
    return 0


def _signature(signer: Signer[Any], args: argparse.Namespace, stdin: IO[bytes], stdout: IO[bytes]) -> int:
    fields: dict[str, str] = {}
    for name, _ in signer.signature_fields:
        fields[name] = getattr(args, _FIELD + name)
        _utf8_argument(fields[name], f"--{name}")
    secret = read_key_file(getattr(args, _KEY + "secret"))
    body = stdin.read()
    if args.command == "sign":
        stdout.write(signer.signature(secret, fields, body).encode("utf-8") + b"\n")
    else:
        signer.check(secret, fields, body, args.presented)
    return 0


def _keygen(scheme: Scheme, stdout: IO[bytes]) -> int:
    import json

    from sealgate.schemes.base import Cipher

    material = scheme.keygen(scheme.options({})) if isinstance(scheme, Cipher) else scheme.keygen()
    stdout.write(json.dumps({"scheme": scheme.name, **material}, indent=2).encode("utf-8") + b"\n")
    return 0


def run(argv: Sequence[str], stdin: IO[bytes], stdout: IO[bytes]) -> int:
    """Run one command; raises :class:`SealgateError` for every refusal."""
    command, scheme = _named(argv)
    args, extras = _parser(command, scheme).parse_known_args(list(argv))
    if command is None or scheme is None:  # pragma: no cover - the generic parser refused or helped already
        raise UsageError(f"no scheme given (see '{PROG} --help')")
    _refuse_extras(extras, command, scheme)
    from sealgate.schemes.base import Cipher

    if command == "keygen":
        return _keygen(scheme, stdout)
    if isinstance(scheme, Cipher):
        return _crypt(scheme, args, stdin, stdout)
    return _signature(scheme, args, stdin, stdout)


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
