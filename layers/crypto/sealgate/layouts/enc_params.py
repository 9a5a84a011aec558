"""Infosimples parameter encryption: ``name=value`` becomes ``enc_name=<aesbridge-gcm token>``.

Wire form of one protected parameter::

    enc_<name> = base64url_nopad( salt[16] | nonce[12] | ciphertext | tag[16] )     (see aesbridge_gcm)
    text       = value                 if str
               = str(value)            if int (decimal)
               = base64(value)         if bytes (standard alphabet, padded), as Infosimples asks
    receipt    = lowercase hex MD5( UTF-8 text )        (what Infosimples stores to confirm reception)

The URL-safe form is exactly what the Infosimples sample makes of ``aes_bridge.encrypt``: ``+`` -> ``-``,
``/`` -> ``_``, ``=`` dropped.

**Bounded work.** One request may carry at most ``max_fields`` protected parameters (default
:data:`MAX_FIELDS`), and the tokens it asks to open may name at most ``max_derivations`` distinct salts
(default :data:`MAX_DERIVATIONS`): each distinct salt costs one 100 000-iteration PBKDF2, chosen by whoever made
the token. Both are checked before anything is derived (:class:`~sealgate.errors.TooManyFields`,
:class:`~sealgate.errors.TooMuchWork`, 413), and both are options of a profile's ``protection``. Encryption
draws its salt from a lease (one derivation per passphrase every few minutes), so only the field count bounds it.

**Receipts are secrets.** An MD5 of a low-entropy value is as good as the value: a CPF has 11 digits, so
its MD5 is reversed by trying 10^11 candidates (minutes on a GPU). Never log receipts; keep them where
the values themselves could be kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from sealgate.codec import as_bytes, b64encode
from sealgate.errors import BadInput, BadToken, TooManyFields
from sealgate.schemes import aesbridge_gcm, base, work
from sealgate.schemes.aesbridge_kdf import DecryptionKeys, EncryptionKeys

__all__ = ["MAX_DERIVATIONS", "MAX_FIELDS", "PREFIX", "ProtectedParams", "protect", "receipt", "reveal"]

PREFIX = "enc_"
#: protected parameters one request may carry (Infosimples' consultations protect a handful)
MAX_FIELDS = 32
#: distinct salts (PBKDF2 derivations, 15-30 ms each) the tokens of one request may use; Sealgate's own tokens
#: share one salt per lease, the reference implementation draws one per value
MAX_DERIVATIONS = 8


@dataclass(frozen=True, slots=True)
class ProtectedParams:
    """Parameters ready to send, and the MD5 receipt of each protected one (never shown by ``repr``)."""

    params: dict[str, object]
    receipts: dict[str, str] = field(repr=False)


def receipt(text: str | bytes) -> str:
    """Lowercase hex MD5 of ``text`` (UTF-8): the receipt Infosimples keeps. Never log it."""
    return hashlib.md5(as_bytes(text), usedforsecurity=False).hexdigest()


def _as_text(name: str, value: object) -> str:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, e.g. from JSON "\ud800"
            raise BadInput(f"parameter {name!r} is not valid Unicode text") from None
        return value
    if isinstance(value, bytes):
        return b64encode(value)
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # more digits than sys.get_int_max_str_digits()
            raise BadInput(f"parameter {name!r} is too large an integer") from None
    raise BadInput(f"parameter {name!r} must be str, bytes or int to be encrypted")


def _check_count(count: int, max_fields: int) -> None:
    if count > max_fields:
        raise TooManyFields(f"at most {max_fields} protected fields per request")


def protect(
    params: Mapping[str, object],
    fields: Collection[str],
    passphrase: str | bytes,
    *,
    keys: EncryptionKeys | None = None,
    max_fields: int = MAX_FIELDS,
) -> ProtectedParams:
    """Replace each of ``fields`` present in ``params`` by ``enc_<field>``; other params pass through.

    The order of ``params`` is kept (``enc_<field>`` takes the place of ``<field>``).

    Raises
    ------
    BadInput
        A field's value is not str (valid Unicode), bytes or int; both ``<field>`` and ``enc_<field>`` are present; or
        ``fields`` is a single string. Messages name the field, never the value.
    BadKey
        The passphrase is empty.
    TooManyFields
        More than ``max_fields`` of ``fields`` are present.

    Examples
    --------
    >>> sent = protect({"cpf": "12345678909", "origem": "web"}, ["cpf"], "throwaway passphrase")
    >>> sorted(sent.params)
    ['enc_cpf', 'origem']
    >>> sent.receipts["cpf"] == receipt("12345678909")
    True
    """
    if isinstance(fields, str | bytes):
        raise BadInput("fields must be a collection of parameter names, not one string")
    chosen = frozenset(fields)
    return protect_with(
        params,
        chosen,
        lambda text: aesbridge_gcm.encrypt(text, passphrase, urlsafe=True, keys=keys),
        max_fields=max_fields,
    )


def protect_with(
    params: Mapping[str, object],
    fields: Collection[str],
    seal: Callable[[bytes], str],
    *,
    max_fields: int = MAX_FIELDS,
) -> ProtectedParams:
    """:func:`protect` with any cipher: ``seal`` turns a value's UTF-8 text into its token."""
    chosen = frozenset(fields)
    _check_count(sum(1 for name in chosen if name in params), max_fields)
    for name in chosen:
        if name in params and PREFIX + name in params:
            raise BadInput(f"parameters {name!r} and {PREFIX + name!r} are both present")
    out: dict[str, object] = {}
    receipts: dict[str, str] = {}
    for name, value in params.items():
        if name not in chosen:
            out[name] = value
            continue
        text = _as_text(name, value)
        out[PREFIX + name] = seal(text.encode("utf-8"))
        receipts[name] = receipt(text)
    return ProtectedParams(params=out, receipts=receipts)


def reveal(
    params: Mapping[str, object],
    passphrase: str | bytes,
    *,
    keys: DecryptionKeys | None = None,
    max_fields: int = MAX_FIELDS,
    max_derivations: int = MAX_DERIVATIONS,
) -> dict[str, object]:
    """Decrypt every ``enc_<name>`` parameter back to ``<name>`` (UTF-8 text), as Infosimples does.

    For the local Infosimples sandbox. Other parameters pass through; the order is kept.

    Raises
    ------
    BadToken
        An ``enc_`` value is not a string, not a token, or does not decrypt to UTF-8.
    BadInput
        Both ``<name>`` and ``enc_<name>`` are present.
    TagMismatch
        Wrong passphrase, or a token was altered.
    TooManyFields, TooMuchWork
        More than ``max_fields`` ``enc_`` parameters, or tokens with more than ``max_derivations`` distinct
        salts: refused before anything is derived.
    """
    return reveal_with(
        params,
        lambda token: aesbridge_gcm.decrypt(token, passphrase, keys=keys),
        max_fields=max_fields,
        max_derivations=max_derivations,
    )


def _protected(key: str) -> bool:
    return key.startswith(PREFIX) and key != PREFIX


def reveal_with(
    params: Mapping[str, object],
    unseal: Callable[[str], bytes],
    *,
    max_fields: int = MAX_FIELDS,
    max_derivations: int = MAX_DERIVATIONS,
) -> dict[str, object]:
    """:func:`reveal` with any cipher: ``unseal`` turns a token into the value's UTF-8 text.

    The tokens are stated to :func:`sealgate.schemes.work.opening` first, so that a cipher whose tokens each
    cost a key derivation refuses the request before its first one.
    """
    tokens = [value for key, value in params.items() if _protected(key)]
    _check_count(len(tokens), max_fields)
    out: dict[str, object] = {}
    with work.opening(tokens, max_derivations=max_derivations):
        for key, value in params.items():
            if not _protected(key):
                out[key] = value
                continue
            name = key[len(PREFIX) :]
            if name in params:
                raise BadInput(f"parameters {name!r} and {key!r} are both present")
            if not isinstance(value, str):
                raise BadToken(f"parameter {key!r} is not a token string")
            try:
                out[name] = unseal(value).decode("utf-8")
            except UnicodeDecodeError:
                raise BadToken(f"parameter {key!r} does not decrypt to UTF-8 text") from None
    return out


@dataclass(frozen=True)
class Options(base.Options):
    """``fields``: the parameters to protect (the others pass through). ``max_fields`` and ``max_derivations``
    bound one request's work (see the module docstring)."""

    fields: tuple[str, ...] = base.option(help="parameter names to protect")
    max_fields: int = base.option(MAX_FIELDS, help="most protected parameters one request may carry")
    max_derivations: int = base.option(
        MAX_DERIVATIONS, help="most distinct salts (key derivations) the tokens of one request may use"
    )

    @classmethod
    def parse(cls, values: Mapping[str, Any], *, where: str = "options") -> Options:
        """:meth:`base.Options.parse`, then the limits' ranges (an :class:`~base.OptionError` naming the option)."""
        options = super().parse(values, where=where)
        assert isinstance(options, Options)
        if not 1 <= options.max_fields <= 10_000:
            raise base.OptionError(f"{where}: option 'max_fields' must be between 1 and 10000")
        if not 1 <= options.max_derivations <= 1_000:
            raise base.OptionError(f"{where}: option 'max_derivations' must be between 1 and 1000")
        if len(set(options.fields)) > options.max_fields:
            raise base.OptionError(f"{where}: option 'fields' lists more parameters than 'max_fields' allows")
        return options


class _EncParams(base.Layout[Options]):
    name = "enc-params"
    options_type = Options

    def protect(self, payload: Any, seal: Callable[[bytes], str], options: Options) -> base.Protected:
        if not isinstance(payload, dict):
            raise BadInput("params must be a JSON object")
        wanted = tuple(name for name in options.fields if name in payload)
        result = protect_with(payload, wanted, seal, max_fields=options.max_fields)
        return base.Protected(payload=result.params, fields=wanted, receipts=dict(result.receipts))

    def reveal(
        self, payload: Any, unseal: Callable[[str], bytes], options: Options, *, authenticated: bool
    ) -> tuple[Any, tuple[str, ...]]:
        if not isinstance(payload, dict):
            raise BadInput("params must be a JSON object")
        revealed = reveal_with(
            payload, unseal, max_fields=options.max_fields, max_derivations=options.max_derivations
        )
        return revealed, tuple(sorted(name.removeprefix(PREFIX) for name in payload if _protected(name)))


#: the registry's entry (:mod:`sealgate.schemes`)
LAYOUT = _EncParams()
