"""The one registry of checks. Adding a check: one module, one line here, its tests."""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any

from pacsradar.checks import Check, CheckSpec

if TYPE_CHECKING:
    from pacsradar.dicom.context import DicomContext
    from pacsradar.web.context import WebContext

# Check modules are named, not imported, here: a DICOM-only scan then never imports the web
# stack (httpx and friends), and start-up stays short (bench/README.md). Each module defines
# ``CHECK``; the order is the run order, and later checks read what earlier ones learnt.

#: DICOM checks in the order they run against one endpoint.
DICOM_CHECK_MODULES: tuple[str, ...] = (
    "pacsradar.dicom.checks.service",
    "pacsradar.dicom.checks.any_ae",
    "pacsradar.dicom.checks.aet_guess",
    "pacsradar.dicom.checks.echo",
    "pacsradar.dicom.checks.query",
    "pacsradar.dicom.checks.retrieve",
    "pacsradar.dicom.checks.store",
    "pacsradar.dicom.checks.identity",
    "pacsradar.dicom.checks.plaintext",
    "pacsradar.dicom.checks.tls",
    "pacsradar.dicom.checks.cve",
)

#: Web, DICOMweb and HTTPS checks, in run order (product, QIDO counts, whether PHI or a login
#: was seen and a working default login are used by the checks after them).
WEB_CHECK_MODULES: tuple[str, ...] = (
    "pacsradar.web.fingerprint",
    "pacsradar.web.unauth_phi",
    "pacsradar.web.qido",
    "pacsradar.web.wado",
    "pacsradar.web.stow",
    "pacsradar.web.credentials",
    "pacsradar.web.orthanc_insecure",
    "pacsradar.web.cve",
    "pacsradar.web.cors",
    "pacsradar.web.webdav",
    "pacsradar.web.metrics",
    "pacsradar.web.plaintext",
    "pacsradar.web.https",
)


def _load(modules: tuple[str, ...]) -> tuple[Any, ...]:
    checks = tuple(importlib.import_module(name).CHECK for name in modules)
    for name, check in zip(modules, checks, strict=True):
        if not isinstance(check, Check):
            raise TypeError(f"{name}.CHECK is not a Check")
    return checks


@functools.cache
def dicom_checks() -> tuple[Check[DicomContext], ...]:
    return _load(DICOM_CHECK_MODULES)


@functools.cache
def web_checks() -> tuple[Check[WebContext], ...]:
    return _load(WEB_CHECK_MODULES)


#: Modules that define ``SPECS: tuple[CheckSpec, ...]`` for checks that are not in the tuples
#: above (the shared TLS audit, files, shares). One line per check module.
SPEC_MODULES: tuple[str, ...] = (
    "pacsradar.tls.audit",
    "pacsradar.files.specs",
)


def all_specs() -> dict[str, CheckSpec]:
    """Every check spec by id; a duplicate id is a programming error."""
    specs: dict[str, CheckSpec] = {}
    sources = [c.specs for c in dicom_checks()] + [c.specs for c in web_checks()]
    for name in SPEC_MODULES:
        sources.append(tuple(getattr(importlib.import_module(name), "SPECS", ())))
    for group in sources:
        for spec in group:
            if spec.id in specs and specs[spec.id] is not spec:
                raise RuntimeError(f"duplicate check id {spec.id}")
            specs[spec.id] = spec
    return specs
