"""Throw-away TLS material for the lab peers, made with the ``openssl`` CLI (Debian ``openssl``).

The certificate names 127.0.0.1 (IP SAN) and ``localhost`` so Python clients can verify it
against the certificate itself used as CA; nothing is ever resolved (no DNS in tests).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["OPENSSL", "CertPair", "make_self_signed"]

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


@dataclass(frozen=True)
class CertPair:
    key: Path  # PEM private key, unencrypted
    cert: Path  # PEM self-signed certificate
    combined: Path  # key + certificate in one PEM (the form Orthanc's SslCertificate wants)


def make_self_signed(
    directory: Path,
    name: str = "lab",
    *,
    common_name: str = "pacsradar-lab",
    key_bits: int = 2048,
    days: int = 2,
    digest: str = "sha256",
) -> CertPair:
    """Generate an RSA key and a self-signed certificate under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    key, cert, combined = (directory / f"{name}{ext}" for ext in (".key", ".crt", ".pem"))
    subprocess.run(
        [
            OPENSSL, "req", "-x509", "-newkey", f"rsa:{key_bits}", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", str(days), f"-{digest}",
            "-subj", f"/CN={common_name}",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-addext", "basicConstraints=critical,CA:TRUE",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    combined.write_bytes(key.read_bytes() + cert.read_bytes())
    return CertPair(key, cert, combined)
