"""Behaviour of ``sealgate_local.tls``: the throwaway CA and server certificate, checked with ``cryptography``."""

from __future__ import annotations

import ipaddress
import ssl
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from sealgate_local.tls import THROWAWAY_MARKER, Pki, make_throwaway_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_throwaway_pki(tmp_path_factory.mktemp("pki") / "nested")


def _certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_writes_exactly_the_three_files_each_marked_throwaway(pki: Pki) -> None:
    assert {path.name for path in pki.ca_cert.parent.iterdir()} == {"ca.pem", "server.pem", "server.key"}
    for path in (pki.ca_cert, pki.server_cert, pki.server_key):
        assert path.read_text("ascii").splitlines()[0].startswith(f"# {THROWAWAY_MARKER}")


def test_the_private_key_is_readable_by_its_owner_only(pki: Pki) -> None:
    assert stat.S_IMODE(pki.server_key.stat().st_mode) == 0o600


def test_keys_are_p256(pki: Pki) -> None:
    key = serialization.load_pem_private_key(pki.server_key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    for path in (pki.ca_cert, pki.server_cert):
        public = _certificate(path).public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert isinstance(public.curve, ec.SECP256R1)
    server = _certificate(pki.server_cert).public_key()
    assert server.public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]


def test_valid_for_about_a_day(pki: Pki) -> None:
    now = datetime.now(UTC)
    for path in (pki.ca_cert, pki.server_cert):
        certificate = _certificate(path)
        assert certificate.not_valid_before_utc <= now
        assert now + timedelta(hours=23) < certificate.not_valid_after_utc <= now + timedelta(days=1)


def test_the_ca_is_a_ca_and_signed_the_server_certificate(pki: Pki) -> None:
    ca, server = _certificate(pki.ca_cert), _certificate(pki.server_cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    server.verify_directly_issued_by(ca)


def test_the_server_certificate_names_the_loopback_hosts(pki: Pki) -> None:
    server = _certificate(pki.server_cert)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(names.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_the_standard_library_loads_the_files(pki: Pki) -> None:
    # The comment header must not upset OpenSSL; a default client context (strict X.509 on 3.13) takes the CA.
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(pki.server_cert, pki.server_key)
    client_side = ssl.create_default_context(cafile=str(pki.ca_cert))
    assert len(client_side.get_ca_certs()) == 1


def test_a_second_call_replaces_the_material(tmp_path: Path) -> None:
    first = make_throwaway_pki(tmp_path)
    ca_before = first.ca_cert.read_bytes()
    second = make_throwaway_pki(tmp_path)
    assert second == first
    assert second.ca_cert.read_bytes() != ca_before
    assert stat.S_IMODE(second.server_key.stat().st_mode) == 0o600
