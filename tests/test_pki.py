import ipaddress

from cryptography import x509

from lab.cluster import pki


def test_apiserver_certificate_is_signed_by_the_lab_ca_for_the_gateway(tmp_path):
    pki.write_pki(tmp_path, ["172.30.0.1", "127.0.0.1"])
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    cert = x509.load_pem_x509_certificate((tmp_path / "apiserver.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("172.30.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert (tmp_path / "sa.key").stat().st_mode & 0o077 == 0
