"""TLS audit for HTTPS and DICOM-TLS ports (PS3.15 Annex B), on the stdlib ``ssl`` module.

``audit_tls(host, port, *, limits, net=None, protocol="dicom-tls")`` returns one ``Attempt``
(``tls.audit``) and the findings (TLS-WEAK, TLS-CERTIFICATE, TLS-NO-CLIENT-AUTH).
"""

from __future__ import annotations

from pacsradar.tls.audit import SPECS, TlsAuditResult, audit_tls, run_tls_audit

__all__ = ["SPECS", "TlsAuditResult", "audit_tls", "run_tls_audit"]
