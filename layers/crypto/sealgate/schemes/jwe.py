"""dLocal card data as a compact JWE (RFC 7516): RSA-OAEP-256 (or RSA-OAEP) key wrap, A256GCM content.

Layout (five base64url segments, no padding, joined by ``.``)::

    BASE64URL(UTF8(protected)) . BASE64URL(RSA-OAEP(cek)) . BASE64URL(iv) . BASE64URL(ciphertext)
        . BASE64URL(tag)

    protected  = {"enc":"A256GCM","alg":"RSA-OAEP-256"}   # what encrypt writes, byte for byte
    cek        = 32 random bytes (the AES-256-GCM key), wrapped to dLocal's RSA public key with
                 RSA-OAEP-256 (OAEP, SHA-256, MGF1-SHA-256) or RSA-OAEP (OAEP, SHA-1, MGF1-SHA-1)
    iv         = 12 random bytes; tag = 16 bytes; AAD = ASCII(first segment)

The card plaintext is compact JSON ``{"number":"...","cvv":"..."}`` (cvv only when present); it travels in
the request's ``encrypted_data`` field in place of ``number`` and ``cvv``.

:func:`decrypt` (for the local dLocal sandbox) reads ``alg``/``enc`` from the token and accepts only
:data:`ALLOWED_ALGS` with :data:`ENC`; it refuses ``zip`` and ``crit`` (never used here) and any segment
that is not canonical base64url, so each token has exactly one accepted spelling.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sealgate.codec import as_bytes, b64decode, b64encode
from sealgate.errors import BadAlgorithm, BadInput, BadKey, BadToken, TagMismatch
from sealgate.schemes import base

if TYPE_CHECKING:
    # jwcrypto is imported where a JWE is made or read: a function that serves dLocal beside other partners
    # (the encrypt function) would otherwise pay for it at every cold start, whichever partner is asked.
    from jwcrypto import jwk

ALLOWED_ALGS: Final = ("RSA-OAEP-256", "RSA-OAEP")
ENC: Final = "A256GCM"
MIN_RSA_BITS: Final = 2048

_SEGMENT = re.compile(r"[A-Za-z0-9_-]*", re.ASCII)
_IV_BYTES = 12
_TAG_BYTES = 16


def load_key(material: str | bytes | jwk.JWK) -> jwk.JWK:
    """RSA key from PEM (public key, private key or certificate) or JWK JSON; a loaded JWK is checked only.

    Parsing a private PEM costs tens of milliseconds (the RSA key is validated): load a key once and pass
    the result to :func:`encrypt`/:func:`decrypt`, which accept it in place of the text.

    Raises
    ------
    BadKey
        Unreadable, encrypted, a JWK set, not RSA, or under :data:`MIN_RSA_BITS`. The message never
        contains the material.
    """
    from jwcrypto import jwk

    if isinstance(material, jwk.JWK):
        return _checked(material)
    try:
        text = as_bytes(material).strip()
    except (TypeError, UnicodeEncodeError):
        raise BadKey("key is neither PEM nor JWK JSON") from None
    try:
        if text.startswith(b"{"):
            parsed = json.loads(text)
            if isinstance(parsed, dict) and "keys" in parsed:
                raise BadKey("key is a JWK set; give a single JWK")
            key = jwk.JWK.from_json(text)
        elif text.startswith(b"-----BEGIN "):
            key = jwk.JWK.from_pem(text)
        else:
            raise BadKey("key is neither PEM nor JWK JSON")
    except BadKey:
        raise
    except Exception:  # jwcrypto and cryptography raise many types; none may leak the material
        raise BadKey("key cannot be read (expected an unencrypted RSA PEM or an RSA JWK)") from None
    return _checked(key)


def encrypt(plaintext: bytes, public_key: str | bytes | jwk.JWK, *, alg: str = "RSA-OAEP-256") -> str:
    """Compact JWE of ``plaintext`` to ``public_key`` (a private key is used through its public part).

    Raises
    ------
    BadAlgorithm
        ``alg`` is not in :data:`ALLOWED_ALGS`.
    BadInput
        ``plaintext`` is empty (jwcrypto cannot carry an empty payload).
    BadKey
        See :func:`load_key`, or the key is marked for another use than encryption.
    """
    if alg not in ALLOWED_ALGS:
        raise BadAlgorithm("JWE alg must be RSA-OAEP-256 or RSA-OAEP")
    if not isinstance(plaintext, bytes | bytearray | memoryview):
        raise BadInput("plaintext must be bytes")
    if not plaintext:
        raise BadInput("plaintext is empty")
    from jwcrypto import jwe, jwk

    key = load_key(public_key)
    if key.has_private:
        key = key.public()
    protected = json.dumps({"enc": ENC, "alg": alg}, separators=(",", ":"))
    token = jwe.JWE(bytes(plaintext), protected=protected, algs=[*ALLOWED_ALGS, ENC])
    try:
        token.add_recipient(key)
    except (jwk.InvalidJWKUsage, jwk.InvalidJWKOperation):
        raise BadKey("key is not allowed for encryption (JWK use/key_ops)") from None
    return str(token.serialize(compact=True))


def decrypt(token: str, private_key: str | bytes | jwk.JWK) -> bytes:
    """Plaintext of a compact JWE made to ``private_key``'s public part.

    Raises
    ------
    BadToken
        Not five canonical base64url segments, a header that is not a JSON object, an IV or tag of the
        wrong length, ``crit``, or an empty payload.
    BadAlgorithm
        ``alg`` not in :data:`ALLOWED_ALGS`, ``enc`` not :data:`ENC`, or ``zip`` set.
    BadKey
        See :func:`load_key`; or the key has no private part.
    TagMismatch
        Wrong key or altered token.
    """
    header_raw, encrypted_key, iv, ciphertext, tag = _split(token)
    header = _header(header_raw)
    if header.get("alg") not in ALLOWED_ALGS or header.get("enc") != ENC:
        raise BadAlgorithm("JWE must be RSA-OAEP-256 or RSA-OAEP with A256GCM")
    if "zip" in header:
        raise BadAlgorithm("compressed JWE is not allowed")
    if "crit" in header:
        raise BadToken("JWE has critical header parameters this gateway does not support")
    if not encrypted_key:
        raise BadToken("JWE has no encrypted key")
    if len(iv) != _IV_BYTES or len(tag) != _TAG_BYTES:
        raise BadToken("JWE IV or tag has the wrong length for A256GCM")
    if not ciphertext:
        raise BadToken("JWE payload is empty")
    from jwcrypto import common, jwe, jwk

    key = load_key(private_key)
    if not key.has_private:
        raise BadKey("decryption needs the RSA private key")
    try:
        key.get_op_key("unwrapKey")
    except (jwk.InvalidJWKUsage, jwk.InvalidJWKOperation):
        raise BadKey("key is not allowed for decryption (JWK use/key_ops)") from None
    envelope = jwe.JWE(algs=[*ALLOWED_ALGS, ENC])
    try:
        envelope.deserialize(token.strip())
    except common.JWException:
        raise BadToken("JWE is malformed") from None
    try:
        envelope.decrypt(key)
    except common.JWException:
        raise TagMismatch from None
    return bytes(envelope.plaintext)


def encrypt_card(
    card: Mapping[str, object], public_key: str | bytes | jwk.JWK, *, alg: str = "RSA-OAEP-256"
) -> dict[str, object]:
    """Copy of ``card`` with ``number`` and ``cvv`` replaced by ``encrypted_data`` (a compact JWE); the rules
    are :func:`sealgate.layouts.card.seal_card`'s."""
    from sealgate.layouts.card import seal_card

    return seal_card(card, lambda plaintext: encrypt(plaintext, public_key, alg=alg))


def decrypt_card(card: Mapping[str, object], private_key: str | bytes | jwk.JWK) -> dict[str, object]:
    """Inverse of :func:`encrypt_card` (see :func:`sealgate.layouts.card.open_card`)."""
    from sealgate.layouts.card import open_card

    return open_card(card, lambda token: decrypt(token, private_key))


def generate_keypair(bits: int = 2048) -> tuple[str, str]:
    """New RSA key pair as (private PKCS#8 PEM, public SubjectPublicKeyInfo PEM), unencrypted.

    Raises
    ------
    BadInput
        ``bits`` under :data:`MIN_RSA_BITS` or above 16384.
    """
    if not MIN_RSA_BITS <= bits <= 16384:
        raise BadInput("RSA key size must be between 2048 and 16384 bits")
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem.decode("ascii"), public_pem.decode("ascii")


def _checked(key: jwk.JWK) -> jwk.JWK:
    """``key`` itself, once it is known to be RSA with a modulus of at least :data:`MIN_RSA_BITS`."""
    if key.get("kty") != "RSA":
        raise BadKey("key is not an RSA key")
    try:
        modulus = b64decode(str(key["n"]), what="RSA modulus")
    except (KeyError, BadToken):
        raise BadKey("RSA key has no readable modulus") from None
    if int.from_bytes(modulus, "big").bit_length() < MIN_RSA_BITS:
        raise BadKey("RSA key is shorter than 2048 bits")
    return key


def _split(token: str) -> tuple[bytes, bytes, bytes, bytes, bytes]:
    """The five decoded segments of a compact JWE; each must be canonical base64url."""
    if not isinstance(token, str):
        raise BadToken("JWE must be text")
    segments = token.strip().split(".")
    if len(segments) != 5:
        raise BadToken("JWE compact serialization has five segments")
    decoded: list[bytes] = []
    for segment in segments:
        if _SEGMENT.fullmatch(segment) is None:
            raise BadToken("JWE segment is not base64url")
        raw = b64decode(segment, what="JWE segment")
        if b64encode(raw, urlsafe=True) != segment:
            raise BadToken("JWE segment is not canonical base64url")
        decoded.append(raw)
    header, encrypted_key, iv, ciphertext, tag = decoded
    return header, encrypted_key, iv, ciphertext, tag


def _header(raw: bytes) -> dict[str, object]:
    """The protected header as a JSON object with no duplicate names."""

    def no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
        names = [name for name, _ in pairs]
        if len(names) != len(set(names)):
            raise BadToken("JWE header repeats a parameter")
        return dict(pairs)

    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError):
        raise BadToken("JWE header is not JSON") from None
    if not isinstance(header, dict):
        raise BadToken("JWE header is not a JSON object")
    return header


@dataclass(frozen=True)
class Options(base.Options):
    """``alg``: the key management algorithm (content is always A256GCM)."""

    alg: str = base.option(
        "RSA-OAEP-256", help="key management (default RSA-OAEP-256)", choices=ALLOWED_ALGS, encrypt_only=True
    )


class _Jwe(base.Cipher[Options]):
    name = "jwe"
    options_type = Options
    authenticated = True
    symmetric = False
    key_slots = (
        base.KeySlot(
            "key",
            "recipient RSA public key to encrypt, private key to decrypt (PEM or JWK)",
            encrypt_flag="--public-key",
            decrypt_flag="--private-key",
            generated="public_key",
            decrypt_generated="private_key",
        ),
    )

    def prepare(self, keys: Mapping[str, str | bytes], *, decrypting: bool) -> Mapping[str, jwk.JWK]:
        return {"key": load_key(keys["key"])}

    def encrypt(self, plaintext: bytes, keys: Mapping[str, Any], options: Options) -> str:
        return encrypt(plaintext, keys["key"], alg=options.alg)

    def decrypt(self, token: str | bytes, keys: Mapping[str, Any], options: Options) -> bytes:
        try:
            text = token.decode("ascii") if isinstance(token, bytes) else token
        except UnicodeDecodeError:
            raise BadToken("token is not ASCII text") from None
        return decrypt(text, keys["key"])

    def keygen(self, options: Options) -> dict[str, str]:
        private, public = generate_keypair()
        return {"private_key": private, "public_key": public}


#: the registry's entry (:mod:`sealgate.schemes`)
CIPHER = _Jwe()
