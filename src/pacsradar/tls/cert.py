"""Facts about the server certificate: expiry, self-signed, key and signature strength, name.

Parsed with the ``cryptography`` package when it is installed; otherwise :func:`verify_facts`
learns what it can from a verifying handshake (OpenSSL's verify result codes). The certificate
is describing the *server*, not a patient; still, only booleans and sizes are reported.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_WEAK_HASHES = frozenset({"md5", "sha1", "md2", "md4"})


@dataclass(frozen=True)
class CertFacts:
    parsed: bool
    self_signed: bool | None = None
    expired: bool | None = None
    not_yet_valid: bool | None = None
    days_left: int | None = None
    key_type: str | None = None
    key_bits: int | None = None
    weak_key: bool | None = None
    signature_hash: str | None = None
    weak_signature: bool | None = None
    name_checked: str | None = None  # "dns" | "ip" | None
    name_matches: bool | None = None
    method: str = "none"


def _name_matches(patterns: list[str], name: str) -> bool:
    name = name.lower().rstrip(".")
    for pattern in patterns:
        pattern = pattern.lower().rstrip(".")
        if pattern == name:
            return True
        # RFC 6125 §6.4.3: a wildcard only as the whole left-most label.
        wildcard = pattern.startswith("*.") and "." in name
        if wildcard and name.split(".", 1)[1] == pattern[2:]:
            return True
    return False


def analyse(der: bytes, *, host: str, now: datetime | None = None) -> CertFacts:
    """Parse with ``cryptography``; ``CertFacts(parsed=False)`` when it is unavailable."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
    except ImportError:
        return CertFacts(parsed=False)
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return CertFacts(parsed=False, method="cryptography")
    now = now or datetime.now(UTC)
    not_after = _utc(getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after)
    not_before = _utc(getattr(cert, "not_valid_before_utc", None) or cert.not_valid_before)
    self_signed = False
    if cert.issuer == cert.subject:
        try:
            cert.verify_directly_issued_by(cert)
            self_signed = True
        except Exception:
            self_signed = False
    key: Any = cert.public_key()
    key_type: str | None
    bits: int | None
    if isinstance(key, rsa.RSAPublicKey):
        key_type, bits = "rsa", key.key_size
        weak_key = bits < 2048
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key_type, bits = "ec", key.curve.key_size
        weak_key = bits < 224
    elif isinstance(key, dsa.DSAPublicKey):
        key_type, bits = "dsa", key.key_size
        weak_key = True  # DSA is disallowed for TLS certificates by BCP 195
    elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        key_type, bits, weak_key = "eddsa", None, False
    else:
        key_type, bits, weak_key = None, None, None
    try:
        hash_algorithm = cert.signature_hash_algorithm
        signature_hash = hash_algorithm.name.lower() if hash_algorithm is not None else None
    except Exception:
        signature_hash = None
    weak_signature = (signature_hash in _WEAK_HASHES) if signature_hash else None
    if self_signed and signature_hash == "sha1":
        weak_signature = False  # a self-signed root's own signature is not relied upon
    name_checked, name_matches = _check_name(cert, host)
    return CertFacts(
        parsed=True,
        self_signed=self_signed,
        expired=now > not_after,
        not_yet_valid=now < not_before,
        days_left=int((not_after - now).total_seconds() // 86400),
        key_type=key_type,
        key_bits=bits,
        weak_key=weak_key,
        signature_hash=signature_hash,
        weak_signature=weak_signature,
        name_checked=name_checked,
        name_matches=name_matches,
        method="cryptography",
    )


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _check_name(cert: Any, host: str) -> tuple[str | None, bool | None]:
    from cryptography import x509

    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if ip is not None:
        ips = san.get_values_for_type(x509.IPAddress) if san is not None else []
        return "ip", ip in ips
    names: list[str] = san.get_values_for_type(x509.DNSName) if san is not None else []
    if not names:  # RFC 6125 §6.4.4: fall back to the CN only without DNS SANs
        names = [str(a.value) for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    return "dns", _name_matches(names, host)


# OpenSSL X509_V_ERR_* codes (x509_vfy.h)
_V_ERR_CERT_NOT_YET_VALID = 9
_V_ERR_CERT_HAS_EXPIRED = 10
_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT = 18
_V_ERR_SELF_SIGNED_CERT_IN_CHAIN = 19


def from_verify_code(code: int | None) -> CertFacts:
    """Fallback without ``cryptography``: what OpenSSL's verification said."""
    if code is None:
        return CertFacts(parsed=False, self_signed=False, expired=False, method="verify")
    return CertFacts(
        parsed=False,
        self_signed=code in (_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, _V_ERR_SELF_SIGNED_CERT_IN_CHAIN),
        expired=True if code == _V_ERR_CERT_HAS_EXPIRED else None,
        not_yet_valid=True if code == _V_ERR_CERT_NOT_YET_VALID else None,
        method="verify",
    )


__all__ = ["CertFacts", "analyse", "from_verify_code"]
