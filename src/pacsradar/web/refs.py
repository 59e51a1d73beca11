"""References cited by the web and TLS checks (the shared ones live in :mod:`pacsradar.checks`)."""

from __future__ import annotations

from pacsradar.checks import GDPR_ART32, HIPAA_ACCESS, HIPAA_TRANSMISSION, cwe
from pacsradar.models import Reference

HIPAA_AUTHENTICATION = Reference(
    title="HIPAA Security Rule 45 CFR §164.312(d) Person or entity authentication",
    url="https://www.ecfr.gov/current/title-45/section-164.312",
)
PS318 = Reference(
    title="DICOM PS3.18: Web Services (DICOMweb: QIDO-RS, WADO-RS, STOW-RS)",
    url="https://dicom.nema.org/medical/dicom/current/output/html/part18.html",
)
ORTHANC_SECURITY = Reference(
    title="Orthanc Book: Securing Orthanc",
    url="https://orthanc.uclouvain.be/book/faq/security.html",
)
CWE_306 = cwe(306)  # Missing Authentication for Critical Function
CWE_319 = cwe(319)  # Cleartext Transmission of Sensitive Information
CWE_521 = cwe(521)  # Weak Password Requirements
CWE_1392 = cwe(1392)  # Use of Default Credentials
CWE_942 = cwe(942)  # Permissive Cross-domain Policy with Untrusted Domains
CWE_200 = cwe(200)  # Exposure of Sensitive Information to an Unauthorized Actor
CWE_326 = cwe(326)  # Inadequate Encryption Strength
CWE_295 = cwe(295)  # Improper Certificate Validation
CWE_1104 = cwe(1104)  # Use of Unmaintained Third Party Components

ACCESS = (HIPAA_ACCESS, GDPR_ART32)
AUTH = (HIPAA_ACCESS, HIPAA_AUTHENTICATION, GDPR_ART32)
TRANSPORT = (HIPAA_TRANSMISSION, GDPR_ART32)

__all__ = [
    "ACCESS",
    "AUTH",
    "CWE_200",
    "CWE_295",
    "CWE_306",
    "CWE_319",
    "CWE_326",
    "CWE_521",
    "CWE_942",
    "CWE_1104",
    "CWE_1392",
    "HIPAA_AUTHENTICATION",
    "ORTHANC_SECURITY",
    "PS318",
    "TRANSPORT",
]
