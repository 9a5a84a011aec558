"""Bounded work per request: the tokens one request opens may not cost more key derivations than allowed.

A token of an AesBridge cipher names its own key derivation: its salt, fed to a 100 000-iteration PBKDF2
(~30 ms). Whoever sends tokens chooses their salts, so a request of many tokens with distinct salts costs one
derivation each. The cost is known before anything is derived: a layout that opens several tokens of one
request states them (:func:`opening`), and a cipher that derives keys counts the distinct derivations among
them (:func:`check_derivations`) on its first decryption in that ``with`` block, refusing the whole request
with :class:`~sealgate.errors.TooMuchWork` before deriving any.

The batch lives in a context variable: it is the current thread's (or task's) alone, and nothing outside a
``with opening(...)`` block (the command line's ``--lines``, one token at a time) is limited by it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from sealgate.errors import TooMuchWork

__all__ = ["Batch", "check_derivations", "opening"]


@dataclass
class Batch:
    """The tokens a layout is about to open for one request, and how many distinct derivations they may cost."""

    tokens: tuple[object, ...]
    max_derivations: int
    checked: bool = False


_CURRENT: ContextVar[Batch | None] = ContextVar("sealgate_opening", default=None)


@contextmanager
def opening(tokens: Iterable[object], *, max_derivations: int) -> Iterator[Batch]:
    """Around a layout's decryptions: ``tokens`` are every token this request will open."""
    if max_derivations < 1:
        raise ValueError("max_derivations must be at least 1")
    batch = Batch(tuple(tokens), max_derivations)
    reset = _CURRENT.set(batch)
    try:
        yield batch
    finally:
        _CURRENT.reset(reset)


def check_derivations(derivation_of: Callable[[object], Hashable | None]) -> None:
    """Refuse the batch being opened if its tokens need more distinct derivations than it allows.

    ``derivation_of`` maps a token to what its key derivation depends on besides the key (AesBridge: the
    salt), or None when the token is malformed (it is refused when opened, before any derivation). Runs once
    per batch, on the cipher's first decryption; outside :func:`opening` it does nothing.

    Raises
    ------
    TooMuchWork
        More distinct derivations than ``max_derivations``.
    """
    batch = _CURRENT.get()
    if batch is None or batch.checked:
        return
    batch.checked = True
    needed = {derivation_of(token) for token in batch.tokens}
    needed.discard(None)
    if len(needed) > batch.max_derivations:
        raise TooMuchWork(f"the tokens of one request may use at most {batch.max_derivations} distinct salts")
