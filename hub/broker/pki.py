"""A small certificate authority for the broker's TLS listener and the devices' client certificates.

Layout under ``<broker dir>/pki``: ``ca.pem`` (give it to devices so they verify the broker, and
to mosquitto as ``cafile``), ``ca.key`` (mode 0600: whoever holds it can mint device identities;
keep the broker directory on the provisioning host), ``server.pem``/``server.key`` for mosquitto,
and ``devices/<id>.pem``/``<id>.key`` per device. A device certificate's Common Name is the
device id, which the TLS listener takes as the username and client id.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hub.errors import ConfigError

CA_DAYS = 3650
LEAF_DAYS = 825


@dataclass(frozen=True, slots=True)
class Pki:
    """Paths of one broker directory's CA and certificates."""

    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.root / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.root / "server.key"

    def device_cert(self, device: str) -> Path:
        return self.root / "devices" / f"{device}.pem"

    def device_key(self, device: str) -> Path:
        return self.root / "devices" / f"{device}.key"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def ensure_ca(pki: Pki, *, name: str = "lockerhub broker CA") -> bool:
    """Create the CA unless it exists; returns True when it was created."""
    if pki.ca_cert.exists() and pki.ca_key.exists():
        return False
    pki.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(pki.ca_key, key)
    _write_cert(pki.ca_cert, cert)
    return True


def _load_ca(pki: Pki) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{pki.root}: no usable CA ({exc}); run `lockerhub broker config`"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{pki.ca_key}: not an EC key made by lockerhub")
    return cert, key


def _issue(
    pki: Pki, common_name: str, *, server_names: Sequence[str] = (), client: bool
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = _load_ca(pki)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if server_names:
        sans: list[x509.GeneralName] = []
        for name in server_names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def issue_server(pki: Pki, names: Sequence[str]) -> None:
    """(Re)issue the broker's server certificate for host ``names`` (DNS names or IPs)."""
    if not names:
        raise ConfigError("--tls-hostname: name at least one host name or address of the broker")
    cert, key = _issue(pki, names[0], server_names=names, client=False)
    _write_key(pki.server_key, key)
    _write_cert(pki.server_cert, cert)


def issue_device(pki: Pki, device: str) -> tuple[Path, Path]:
    """Issue a client certificate whose Common Name is ``device``; returns (cert, key) paths."""
    cert, key = _issue(pki, device, client=True)
    pki.device_cert(device).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_key(pki.device_key(device), key)
    _write_cert(pki.device_cert(device), cert)
    return pki.device_cert(device), pki.device_key(device)
