"""The one registry of checks. Adding a check: one module, one line here, its tests."""

from __future__ import annotations

import importlib

from pacsradar.checks import Check, CheckSpec
from pacsradar.dicom.checks import (
    aet_guess,
    any_ae,
    echo,
    identity,
    plaintext,
    query,
    retrieve,
    service,
    store,
    tls,
)
from pacsradar.dicom.context import DicomContext
from pacsradar.web import (
    cors,
    credentials,
    cve,
    fingerprint,
    https,
    metrics,
    orthanc_insecure,
    unauth_phi,
    wado,
    webdav,
)
from pacsradar.web import plaintext as web_plaintext
from pacsradar.web import qido as web_qido
from pacsradar.web import stow as web_stow
from pacsradar.web.context import WebContext

#: DICOM checks in the order they run against one endpoint (later ones read earlier results).
DICOM_CHECKS: tuple[Check[DicomContext], ...] = (
    service.CHECK,
    any_ae.CHECK,
    aet_guess.CHECK,
    echo.CHECK,
    query.CHECK,
    retrieve.CHECK,
    store.CHECK,
    identity.CHECK,
    plaintext.CHECK,
    tls.CHECK,
)

#: Web, DICOMweb and HTTPS checks, in run order: later checks use what earlier ones learnt
#: (product, QIDO counts, whether PHI or a login was seen, a working default login).
WEB_CHECKS: tuple[Check[WebContext], ...] = (
    fingerprint.CHECK,
    unauth_phi.CHECK,
    web_qido.CHECK,
    wado.CHECK,
    web_stow.CHECK,
    credentials.CHECK,
    orthanc_insecure.CHECK,
    cve.CHECK,
    cors.CHECK,
    webdav.CHECK,
    metrics.CHECK,
    web_plaintext.CHECK,
    https.CHECK,
)

#: Modules that define ``SPECS: tuple[CheckSpec, ...]`` for checks that are not in the tuples
#: above (the shared TLS audit, files, shares). One line per check module.
SPEC_MODULES: tuple[str, ...] = (
    "pacsradar.tls.audit",
    "pacsradar.files.specs",
)


def all_specs() -> dict[str, CheckSpec]:
    """Every check spec by id; a duplicate id is a programming error."""
    specs: dict[str, CheckSpec] = {}
    sources = [c.specs for c in DICOM_CHECKS] + [c.specs for c in WEB_CHECKS]
    for name in SPEC_MODULES:
        sources.append(tuple(getattr(importlib.import_module(name), "SPECS", ())))
    for group in sources:
        for spec in group:
            if spec.id in specs and specs[spec.id] is not spec:
                raise RuntimeError(f"duplicate check id {spec.id}")
            specs[spec.id] = spec
    return specs
