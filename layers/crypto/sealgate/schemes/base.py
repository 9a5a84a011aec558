"""The contracts every scheme fulfils: a cipher, a request signer or a webhook verifier.

A scheme describes itself once: its name, a one-line summary, its options (a frozen dataclass, built strictly
from a profile or from command-line flags), the key material it needs and what it does with bytes. Callers
reach a scheme only through :mod:`sealgate.schemes` (the registry) and never branch on its name.

Options are plain dataclass fields; a field's ``metadata`` may carry ``help`` (one line, for ``--help``) and
``choices`` (the allowed values). Key material is not an option: a scheme names its key slots (``key``,
``iv``), which a profile maps to fields of the partner's secret and the command line reads from files.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from sealgate.errors import BadInput, SealgateError, UnsupportedOperation


class OptionError(SealgateError):
    """An option is unknown, missing or of the wrong type; the message names it (never its value)."""

    code = "bad_option"
    default_message = "invalid option"


@dataclass(frozen=True)
class Options:
    """Base of every scheme's options: build with :meth:`parse`, which refuses what it does not know."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def parse(cls, values: Mapping[str, Any], *, where: str = "options") -> Options:
        """Build from ``values``: an unknown, missing or mistyped option is an :class:`OptionError` naming it."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        for name in values:
            if name not in known:
                raise OptionError(
                    f"{where}: unknown option {name!r} (known: {', '.join(sorted(known)) or 'none'})"
                )
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for name, spec in known.items():
            if name not in values:
                if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                    raise OptionError(f"{where}: option {name!r} is required")
                continue
            kwargs[name] = _checked(values[name], hints[name], spec, f"{where}: option {name!r}")
        return cls(**kwargs)

    @classmethod
    def choices(cls, name: str) -> tuple[str, ...] | None:
        """The allowed values of option ``name``, if it has a fixed set."""
        spec = next(f for f in dataclasses.fields(cls) if f.name == name)
        found = spec.metadata.get("choices")
        return tuple(found) if found is not None else None


def option(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    choices: Sequence[str] | None = None,
    encrypt_only: bool = False,
) -> Any:
    """A documented option field: ``choices`` restricts its values; ``encrypt_only`` marks an option that only
    shapes what encryption writes (decryption reads every form), so a decrypt command refuses it."""
    metadata = {
        "help": help,
        "choices": tuple(choices) if choices is not None else None,
        "encrypt_only": encrypt_only,
    }
    if isinstance(default, list | dict):
        frozen = tuple(default) if isinstance(default, list) else types.MappingProxyType(dict(default))
        return field(default=frozen, metadata=metadata)
    return field(default=default, metadata=metadata)


def _checked(value: Any, hint: Any, spec: dataclasses.Field[Any], where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is str:
        ok = isinstance(value, str) and bool(value)
    elif origin is tuple:
        ok = isinstance(value, list | tuple) and bool(value) and all(isinstance(v, str) and v for v in value)
        value = tuple(value) if ok else value
    elif origin in (Mapping, dict) or hint is Mapping:
        ok = (
            isinstance(value, dict)
            and bool(value)
            and all(isinstance(k, str) and isinstance(v, str) and k and v for k, v in value.items())
        )
        value = types.MappingProxyType(dict(value)) if ok else value
    else:  # pragma: no cover - a scheme declared an option type this parser does not know
        raise TypeError(f"{where}: unsupported option type {hint!r}")
    if not ok:
        raise OptionError(f"{where} has the wrong type")
    choices = spec.metadata.get("choices")
    if choices is not None and value not in choices:
        raise OptionError(f"{where} must be one of {', '.join(choices)}")
    return value


OptionsT = TypeVar("OptionsT", bound=Options)


@dataclass(frozen=True)
class KeySlot:
    """A piece of key material a cipher needs, and where the command line reads it from.

    ``encrypt_flag``/``decrypt_flag`` differ for public-key schemes (``--public-key``/``--private-key``).
    ``generated`` names the value :meth:`Cipher.keygen` returns for this slot when encrypting (what a partner
    profile stores), ``decrypt_generated`` the one that decrypts (the same, but for public-key schemes).
    """

    name: str
    help: str
    encrypt_flag: str = "--key-file"
    decrypt_flag: str = "--key-file"
    generated: str = "key"
    decrypt_generated: str | None = None

    @property
    def decrypting_value(self) -> str:
        return self.decrypt_generated or self.generated


class Scheme(ABC, Generic[OptionsT]):
    """What every scheme has: a name, a summary and its options."""

    name: ClassVar[str]
    options_type: ClassVar[type[Options]]

    def options(self, values: Mapping[str, Any], *, where: str | None = None) -> OptionsT:
        """This scheme's options from ``values`` (a profile section less its shared keys, or CLI flags)."""
        return self.options_type.parse(values, where=where or self.name)  # type: ignore[return-value]


class Cipher(Scheme[OptionsT]):
    """Bytes in, text token out (and back, where the scheme is symmetric).

    ``authenticated``: a wrong key or an altered token is always detected (MAC or tag). Where it is False,
    a caller must treat a plaintext it cannot parse as an authentication failure.
    ``symmetric``: Sealgate holds what decrypts (False for public-key schemes: only the partner decrypts).
    """

    authenticated: ClassVar[bool]
    symmetric: ClassVar[bool] = True
    can_encrypt: ClassVar[bool] = True
    key_slots: ClassVar[tuple[KeySlot, ...]] = (KeySlot("key", "file holding the key"),)

    @abstractmethod
    def encrypt(self, plaintext: bytes, keys: Mapping[str, str | bytes], options: OptionsT) -> str:
        """The token for ``plaintext`` under ``keys`` (slot name -> material, as :meth:`prepare` returned it)."""

    @abstractmethod
    def decrypt(self, token: str | bytes, keys: Mapping[str, str | bytes], options: OptionsT) -> bytes:
        """The plaintext of ``token``; an :class:`~sealgate.errors.AuthenticationFailed` when it does not open."""

    @abstractmethod
    def keygen(self, options: OptionsT) -> dict[str, str]:
        """Fresh key material, by name (each :attr:`KeySlot.generated`, plus what only the partner keeps)."""

    def prepare(self, keys: Mapping[str, str | bytes], *, decrypting: bool) -> Mapping[str, Any]:
        """Key material parsed once, for many values (an RSA key is not parsed per value)."""
        return keys

    def attribute(self, options: OptionsT, name: str) -> str | None:
        """A partner-facing label of this cipher under ``options`` (e.g. Netcore's ``x-eCode``), if any."""
        return None


@dataclass(frozen=True)
class SignedHeaders:
    """What signing adds to a request: ``derived`` values (signature, date, login...) and stored
    ``credentials`` (API keys, trans keys) that the gateway attaches itself and never hands back by default."""

    derived: dict[str, str]
    credentials: dict[str, str]

    def all(self) -> dict[str, str]:
        return {**self.derived, **self.credentials}


class Signer(Scheme[OptionsT]):
    """Headers that authenticate a request body to a partner.

    ``secret_options`` name the options whose values are fields of the partner's secret.

    ``signature_fields``: where the scheme also signs outside a request (the command line's ``sign`` and
    ``verify``), the values its signature covers besides the secret and the body, as ``(name, help)``
    pairs; such a scheme implements :meth:`signature`, :meth:`check` and :meth:`keygen`. Empty where the
    scheme signs only through a profile.
    """

    secret_options: ClassVar[tuple[str, ...]] = ()
    signature_fields: ClassVar[tuple[tuple[str, str], ...]] = ()

    @abstractmethod
    def sign(
        self,
        options: OptionsT,
        secret: Mapping[str, str],
        body: bytes,
        *,
        protection: str | None,
        now: datetime | None = None,
    ) -> SignedHeaders:
        """The headers for ``body`` (exact bytes). ``protection`` is what :meth:`requires` asked of the cipher."""

    def requires(self, options: OptionsT) -> str | None:
        """The cipher attribute this signer sends (see :meth:`Cipher.attribute`), or None."""
        return None

    def signature(self, secret: bytes, fields: Mapping[str, str], body: bytes) -> str:
        """The signature of ``body`` and ``fields`` (one per :attr:`signature_fields`) under ``secret``."""
        raise UnsupportedOperation(f"{self.name} signs only through a profile")

    def check(self, secret: bytes, fields: Mapping[str, str], body: bytes, presented: str) -> None:
        """Accept ``presented`` as :meth:`signature` would make it; :class:`~sealgate.errors.SignatureMismatch`
        (well formed but wrong) or :class:`~sealgate.errors.BadToken` (malformed) otherwise."""
        raise UnsupportedOperation(f"{self.name} signs only through a profile")

    def keygen(self) -> dict[str, str]:
        """A fresh secret for :meth:`signature`, by name."""
        raise UnsupportedOperation(f"{self.name} signs only through a profile")

    def secret_fields(self, options: OptionsT) -> tuple[str, ...]:
        """The secret fields these options read."""
        found: list[str] = []
        for name in self.secret_options:
            value = getattr(options, name)
            if isinstance(value, Mapping):
                found.extend(value.values())
            elif isinstance(value, str):
                found.append(value)
        return tuple(found)


@dataclass(frozen=True)
class Notification:
    """A verified notification: the body exactly as signed, and the key that identifies it for
    de-duplication (the partner's own id where it has one)."""

    body: bytes
    dedupe_key: str
    signed_at: str | None = None


class Verifier(Scheme[OptionsT]):
    """Checks a partner's signed notification on every header the scheme defines."""

    secret_options: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def verify(
        self,
        options: OptionsT,
        secret: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: datetime | None = None,
    ) -> Notification:
        """Authenticate ``body`` with ``headers`` (lower-cased names).

        Raises :class:`~sealgate.errors.MissingSignature`, :class:`~sealgate.errors.SignatureMismatch` or
        :class:`~sealgate.errors.StaleRequest`.
        """

    def secret_fields(self, options: OptionsT) -> tuple[str, ...]:
        return tuple(getattr(options, name) for name in self.secret_options)


def require_text(value: object, what: str) -> str:
    """A non-empty string, or :class:`BadInput` naming ``what``."""
    if not isinstance(value, str) or not value:
        raise BadInput(f"{what} must be a non-empty string")
    return value


@dataclass(frozen=True)
class Protected:
    """A protected payload, the MD5 receipts (where the layout gives them) and the names of what was protected."""

    payload: Any
    fields: tuple[str, ...]
    receipts: dict[str, str] = field(default_factory=dict, repr=False)


class Layout(Scheme[OptionsT]):
    """Where a cipher's tokens go in a JSON payload: the whole body, listed parameters, a card's fields."""

    @abstractmethod
    def protect(self, payload: Any, seal: Callable[[bytes], str], options: OptionsT) -> Protected:
        """``payload`` with its sensitive parts replaced by ``seal(plaintext)`` tokens."""

    @abstractmethod
    def reveal(
        self, payload: Any, unseal: Callable[[str], bytes], options: OptionsT, *, authenticated: bool
    ) -> tuple[Any, tuple[str, ...]]:
        """Undo :meth:`protect`; returns the payload and the names revealed. With an unauthenticated cipher,
        a plaintext that does not parse is an authentication failure (wrong key or altered token)."""
