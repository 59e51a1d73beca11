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

#: Modules that define ``SPECS: tuple[CheckSpec, ...]`` outside the DICOM checks above
#: (web, TLS, files, shares). One line per check module.
SPEC_MODULES: tuple[str, ...] = ()


def all_specs() -> dict[str, CheckSpec]:
    """Every check spec by id; a duplicate id is a programming error."""
    specs: dict[str, CheckSpec] = {}
    sources = [c.specs for c in DICOM_CHECKS]
    for name in SPEC_MODULES:
        sources.append(tuple(getattr(importlib.import_module(name), "SPECS", ())))
    for group in sources:
        for spec in group:
            if spec.id in specs and specs[spec.id] is not spec:
                raise RuntimeError(f"duplicate check id {spec.id}")
            specs[spec.id] = spec
    return specs
