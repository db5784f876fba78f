"""The lab's own CA, API server certificate and service-account key."""

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _server_cert(name: str, key, issuer_name, issuer_key, ips: list[str], dns: tuple[str, ...] = ()):
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(issuer_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=issuer_key is key, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256()))


def write_self_signed(directory: Path, name: str, ips: list[str]) -> tuple[Path, Path]:
    """name.crt/name.key, a self-signed server certificate for `ips` that
    clients trust by holding the certificate itself (docker's certs.d)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = _server_cert(name, key, subject, key, ips)
    crt, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(_pem_key(key))
    key_file.chmod(0o600)
    return crt, key_file


def write_pki(directory: Path, server_ips: list[str]) -> None:
    """ca.crt, apiserver.crt/.key (valid for server_ips), sa.key/sa.pub."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nodelab-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = _key()
    cert = _server_cert("kube-apiserver", key, ca_name, ca_key, server_ips,
                        ("kubernetes", "kubernetes.default", "localhost"))
    sa = _key()
    (directory / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "apiserver.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "apiserver.key").write_bytes(_pem_key(key))
    (directory / "sa.key").write_bytes(_pem_key(sa))
    (directory / "sa.pub").write_bytes(sa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    for name in ("apiserver.key", "sa.key"):
        (directory / name).chmod(0o600)
