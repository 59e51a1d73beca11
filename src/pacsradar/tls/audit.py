"""TLS-WEAK, TLS-CERTIFICATE and TLS-NO-CLIENT-AUTH for HTTPS and DICOM-TLS endpoints.

Four handshakes at most per endpoint: the server's preferred version and cipher against a
client that offers everything; TLS 1.0 and TLS 1.1 pinned; only weak suites offered. The
certificate comes from the first one. "Could not test" (our OpenSSL refused to offer an old
version or suite) is reported as such, never as "not accepted".

DICOM-TLS (PS3.15 Annex B, BCP 195 profile B.9 and later) expects TLS 1.2+, strong AEAD suites
and certificates on both ends; HTTPS portals are judged the same way except that client
certificates are not expected there.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from typing import Literal

from pacsradar.checks import PS315_ANNEX_B, Check, CheckOutcome, CheckSpec
from pacsradar.config import Limits
from pacsradar.errors import ConnectError, ProtocolError, ScanError, TlsHandshakeError
from pacsradar.models import Attempt, Endpoint, Evidence, Finding, Severity
from pacsradar.net import Net
from pacsradar.tls.cert import CertFacts, analyse, from_verify_code
from pacsradar.tls.probe import ALL_CIPHERS, WEAK_CIPHERS, Handshake, handshake
from pacsradar.web.refs import CWE_295, CWE_326, TRANSPORT

TlsProtocol = Literal["dicom-tls", "https"]

TLS_WEAK = CheckSpec(
    id="TLS-WEAK",
    title="TLS accepts obsolete protocol versions or weak ciphers",
    severity=Severity.MEDIUM,
    severity_varies="high for NULL, export-grade or anonymous cipher suites",
    category="transport",
    description=(
        "The TLS service accepts TLS 1.0/1.1 or cipher suites without real protection (NULL,"
        " export, anonymous, RC4, DES/3DES). An attacker on the path can downgrade or decrypt"
        " the traffic; PS3.15 Annex B (BCP 195 profiles) requires TLS 1.2 or later."
    ),
    remediation=(
        "Allow TLS 1.2 and 1.3 only, with ECDHE + AES-GCM or ChaCha20-Poly1305 suites (the"
        " PS3.15 B.9 'BCP 195' profile)."
    ),
    product_remediation={
        "Orthanc": (
            "Orthanc: SslMinimumProtocolVersion 4 (TLS 1.2) or higher and SslCiphersAccepted"
            " limited to AEAD suites; DicomTlsMinimumProtocolVersion likewise for DICOM TLS."
        ),
        "DCMTK": "DCMTK: use --profile-bcp195-nd (+py) or --profile-bcp195-ex (+pz).",
    },
    references=(PS315_ANNEX_B, *TRANSPORT, CWE_326),
    cwe="CWE-326",
)
TLS_CERTIFICATE = CheckSpec(
    id="TLS-CERTIFICATE",
    title="TLS certificate cannot be trusted as presented",
    severity=Severity.LOW,
    severity_varies="medium when expired, not yet valid, or with a weak key or signature",
    category="transport",
    description=(
        "The server's certificate is expired, not yet valid, self-signed, issued for another"
        " name, or uses a weak key or signature. Clients cannot authenticate the server, so a"
        " machine in the middle can impersonate it."
    ),
    remediation=(
        "Issue the server a certificate from the organisation's CA (RSA 2048+ or ECDSA P-256+,"
        " SHA-256 signature) for the name clients use, and renew it before expiry."
    ),
    product_remediation={
        "Orthanc": "Orthanc: point SslCertificate at the CA-issued PEM (key + chain).",
    },
    references=(PS315_ANNEX_B, *TRANSPORT, CWE_295),
    cwe="CWE-295",
)
TLS_NO_CLIENT_AUTH = CheckSpec(
    id="TLS-NO-CLIENT-AUTH",
    title="DICOM TLS accepts clients without a certificate",
    severity=Severity.LOW,
    category="authentication",
    description=(
        "The DICOM TLS port completes the handshake without a client certificate. PS3.15"
        " Annex B secure transport profiles authenticate both nodes; without it any client can"
        " open an encrypted association."
    ),
    remediation="Require and verify client certificates issued by the organisation's CA.",
    product_remediation={
        "Orthanc": "Orthanc: DicomTlsRemoteCertificateRequired true with DicomTlsTrustedCertificates.",
        "DCMTK": "DCMTK: --require-peer-cert (-rc) with --add-cert-file for the trusted CA.",
    },
    references=(PS315_ANNEX_B, *TRANSPORT),
    cwe="CWE-306",
)

SPECS: tuple[CheckSpec, ...] = (TLS_WEAK, TLS_CERTIFICATE, TLS_NO_CLIENT_AUTH)

_PINNED_NAMES = {"TLSv1": "TLSv1.0", "TLSv1_1": "TLSv1.1"}
_WEAK_MARKERS = ("NULL", "EXP", "ADH", "AECDH", "ANON", "RC4", "DES", "MD5")


def weak_cipher(name: str | None, bits: int | None) -> bool:
    if not name:
        return False
    upper = name.upper()
    if upper.startswith("TLS_AES") or upper.startswith("TLS_CHACHA20"):
        return False  # TLS 1.3 suites
    if any(marker in upper for marker in _WEAK_MARKERS):
        return True
    return bits is not None and bits < 128


@dataclass(frozen=True)
class TlsAuditResult:
    """Typed result (sslyze style). Version support: True/False, or None = could not test."""

    tls: bool
    version: str | None
    cipher: str | None
    cipher_bits: int | None
    tls10: bool | None
    tls11: bool | None
    weak_cipher_accepted: str | None
    weak_ciphers_tested: bool
    cert_requested: bool
    client_cert_required: bool | None
    cert: CertFacts
    failure: str | None = None

    def details(self) -> Evidence:
        c = self.cert
        return {
            "tls": self.tls,
            "version": self.version,
            "cipher": self.cipher,
            "cipher_bits": self.cipher_bits,
            "tls1_0": _tri(self.tls10),
            "tls1_1": _tri(self.tls11),
            "weak_cipher_accepted": self.weak_cipher_accepted,
            "weak_ciphers_tested": self.weak_ciphers_tested,
            "client_cert_requested": self.cert_requested,
            "client_cert_required": self.client_cert_required,
            "cert_parsed": c.parsed,
            "cert_self_signed": c.self_signed,
            "cert_expired": c.expired,
            "cert_days_left": c.days_left,
            "cert_key": f"{c.key_type}-{c.key_bits}" if c.key_type else None,
            "cert_signature_hash": c.signature_hash,
            "cert_name_checked": c.name_checked,
            "cert_name_matches": c.name_matches,
        }


def _tri(value: bool | None) -> str:
    return "could not test" if value is None else ("accepted" if value else "refused")


def _with_warnings_off(name: str) -> ssl.TLSVersion:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return ssl.TLSVersion[name]


async def _version_accepted(
    net: Net, host: str, port: int, name: str, server_name: str | None
) -> bool | None:
    version = _with_warnings_off(name)
    probe = await handshake(
        net, host, port, minimum=version, maximum=version, ciphers=ALL_CIPHERS,
        server_name=server_name, alert_wait=0.0,
    )  # fmt: skip
    if probe.could_not_test:
        return None
    # A ServerHello for another version is a refusal (our client aborts it).
    return probe.server_hello and probe.version == _PINNED_NAMES[name]


async def _verify_code(net: Net, host: str, port: int, server_name: str | None) -> tuple[bool, int | None]:
    """Fallback without ``cryptography``: (verification ran, OpenSSL verify code or None=ok)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    async with net.connect(host, port) as stream:
        try:
            await stream.start_tls(ctx, server_hostname=server_name, within=net.limits.connect_timeout)
        except TlsHandshakeError as exc:
            if isinstance(exc.__cause__, ssl.SSLCertVerificationError):
                return True, int(exc.__cause__.verify_code)
            return False, None
        finally:
            stream.writer.transport.abort()
    return True, None


async def run_tls_audit(net: Net, host: str, port: int, *, server_name: str | None = None) -> TlsAuditResult:
    """The probes; raises ConnectError when TCP fails, ProtocolError-free otherwise."""
    tls13 = ssl.TLSVersion.MAXIMUM_SUPPORTED
    oldest = _with_warnings_off("TLSv1")
    first: Handshake = await handshake(
        net, host, port, minimum=oldest, maximum=tls13, server_name=server_name,
        alert_wait=min(1.0, net.limits.read_timeout),
    )  # fmt: skip
    if not first.server_hello:
        return TlsAuditResult(
            tls=False, version=None, cipher=None, cipher_bits=None, tls10=None, tls11=None,
            weak_cipher_accepted=None, weak_ciphers_tested=False, cert_requested=False,
            client_cert_required=None, cert=CertFacts(parsed=False), failure=first.failure,
        )  # fmt: skip
    tls10 = await _version_accepted(net, host, port, "TLSv1", server_name)
    tls11 = await _version_accepted(net, host, port, "TLSv1_1", server_name)
    weak = await handshake(
        net, host, port, minimum=oldest, maximum=ssl.TLSVersion.TLSv1_2, ciphers=WEAK_CIPHERS,
        server_name=server_name, alert_wait=0.0,
    )  # fmt: skip
    weak_name = weak.cipher if weak.server_hello else None
    if first.cert_der is not None:
        facts = analyse(first.cert_der, host=server_name or host)
    else:
        facts = CertFacts(parsed=False)
    if not facts.parsed:
        ran, code = await _verify_code(net, host, port, server_name)
        facts = from_verify_code(code) if ran else CertFacts(parsed=False)
    return TlsAuditResult(
        tls=True,
        version=first.version,
        cipher=first.cipher,
        cipher_bits=first.cipher_bits,
        tls10=tls10,
        tls11=tls11,
        weak_cipher_accepted=weak_name,
        weak_ciphers_tested=not weak.could_not_test,
        cert_requested=first.cert_requested,
        client_cert_required=first.client_cert_required,
        cert=facts,
    )


def findings_for(
    result: TlsAuditResult, endpoint: Endpoint, *, product: str | None = None
) -> tuple[Finding, ...]:
    if not result.tls:
        return ()
    out: list[Finding] = []
    weak_issues: list[str] = []
    severity = Severity.MEDIUM
    if result.tls10:
        weak_issues.append("TLS 1.0 accepted")
    if result.tls11:
        weak_issues.append("TLS 1.1 accepted")
    if result.weak_cipher_accepted:
        weak_issues.append(f"weak cipher suite accepted ({result.weak_cipher_accepted})")
        if any(m in result.weak_cipher_accepted.upper() for m in ("NULL", "EXP", "ADH", "AECDH")):
            severity = Severity.HIGH  # no encryption, export grade or no authentication
    if weak_cipher(result.cipher, result.cipher_bits):
        weak_issues.append(f"server prefers a weak cipher suite ({result.cipher})")
        if result.cipher and "NULL" in result.cipher.upper():
            severity = Severity.HIGH
    if weak_issues:
        out.append(
            TLS_WEAK.finding(
                endpoint,
                summary="; ".join(weak_issues),
                evidence={
                    "issues": weak_issues,
                    "tls1_0": _tri(result.tls10),
                    "tls1_1": _tri(result.tls11),
                    "weak_cipher_accepted": result.weak_cipher_accepted,
                    "preferred_cipher": result.cipher,
                    "version": result.version,
                },
                product=product,
                severity=severity,
            )
        )
    cert = result.cert
    cert_issues: list[str] = []
    cert_severity = Severity.LOW
    if cert.expired:
        cert_issues.append("certificate expired")
        cert_severity = Severity.MEDIUM
    if cert.not_yet_valid:
        cert_issues.append("certificate not yet valid")
        cert_severity = Severity.MEDIUM
    if cert.weak_key:
        cert_issues.append(f"weak key ({cert.key_type} {cert.key_bits} bits)")
        cert_severity = Severity.MEDIUM
    if cert.weak_signature:
        cert_issues.append(f"weak signature hash ({cert.signature_hash})")
        cert_severity = Severity.MEDIUM
    if cert.self_signed:
        cert_issues.append("self-signed certificate")
    if cert.name_checked == "dns" and cert.name_matches is False:
        cert_issues.append("certificate not issued for the scanned name")
    if cert_issues:
        out.append(
            TLS_CERTIFICATE.finding(
                endpoint,
                summary="; ".join(cert_issues),
                evidence={
                    "issues": cert_issues,
                    "self_signed": cert.self_signed,
                    "expired": cert.expired,
                    "days_left": cert.days_left,
                    "key_bits": cert.key_bits,
                    "signature_hash": cert.signature_hash,
                },
                product=product,
                severity=cert_severity,
            )
        )
    if endpoint.protocol == "dicom-tls" and result.client_cert_required is False:
        out.append(
            TLS_NO_CLIENT_AUTH.finding(
                endpoint,
                summary="the TLS handshake completes without a client certificate",
                evidence={
                    "client_cert_requested": result.cert_requested,
                    "client_cert_required": False,
                },
                product=product,
            )
        )
    return tuple(out)


async def audit_tls(
    host: str,
    port: int,
    *,
    limits: Limits,
    net: Net | None = None,
    protocol: TlsProtocol = "dicom-tls",
    server_name: str | None = None,
    product: str | None = None,
) -> tuple[Attempt, tuple[Finding, ...]]:
    """Audit one TLS port (DICOM-TLS by default); never raises for a hostile or closed peer.

    ``net`` shares the scan's rate and per-host limits (pass ``AuditContext.net``); without it a
    private :class:`Net` is made from ``limits``. The attempt is named ``tls.audit``.
    """
    endpoint = Endpoint(host=host, port=port, protocol=protocol)
    return await CHECK.attempt(
        TlsTarget(net or Net(limits), endpoint, server_name=server_name, product=product)
    )


@dataclass(frozen=True)
class TlsTarget:
    net: Net
    endpoint: Endpoint
    server_name: str | None = None
    product: str | None = None


async def _run(target: TlsTarget) -> CheckOutcome:
    start = time.monotonic()
    try:
        result = await run_tls_audit(
            target.net, target.endpoint.host, target.endpoint.port, server_name=target.server_name
        )
    except ConnectError:
        raise
    except (OSError, ssl.SSLError) as exc:  # defensive: never crash on a hostile peer
        raise ScanError(f"TLS probe failed ({type(exc).__name__})") from exc
    if not result.tls:
        raise ProtocolError(f"no TLS handshake: {result.failure or 'no ServerHello'}")
    details = result.details()
    details["probe_ms"] = round((time.monotonic() - start) * 1000)
    return CheckOutcome(
        details=details, findings=findings_for(result, target.endpoint, product=target.product)
    )


CHECK: Check[TlsTarget] = Check(name="tls.audit", specs=SPECS, run=_run)

__all__ = [
    "CHECK",
    "SPECS",
    "TLS_CERTIFICATE",
    "TLS_NO_CLIENT_AUTH",
    "TLS_WEAK",
    "TlsAuditResult",
    "TlsTarget",
    "audit_tls",
    "findings_for",
    "run_tls_audit",
    "weak_cipher",
]
