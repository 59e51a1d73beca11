"""The one registry of checks. Adding a check: one module, one line here, its tests.

Every unit of work is here, whatever its family (:mod:`pacsradar.families`): the DICOM and web
checks the auditors run, and the file and share audits, declared as
:class:`~pacsradar.checks.Unit`. :func:`catalogue` lists every check id with its family and
intrusiveness; ``pacsradar checks`` and the README tables are made from it.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pacsradar.checks import Check, CheckSpec, Unit
from pacsradar.families import FAMILIES
from pacsradar.models import Reference, Severity

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
    "pacsradar.dicom.checks.worklist",
    "pacsradar.dicom.checks.ups",
    "pacsradar.dicom.checks.store",
    "pacsradar.dicom.checks.identity",
    "pacsradar.dicom.checks.plaintext",
    "pacsradar.dicom.checks.tls",
    "pacsradar.dicom.checks.cve",
    "pacsradar.dicom.checks.honeypot",
)

#: Web, DICOMweb and HTTPS checks, in run order (product, QIDO counts, whether PHI or a login
#: was seen and a working default login are used by the checks after them).
WEB_CHECK_MODULES: tuple[str, ...] = (
    "pacsradar.web.fingerprint",
    "pacsradar.web.unauth_phi",
    "pacsradar.web.patient_list",
    "pacsradar.web.qido",
    "pacsradar.web.ups",
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

#: Units that build their own envelope, as ``module:ATTRIBUTE`` (a tuple of :class:`Unit`).
SHARE_UNIT_MODULES: tuple[str, ...] = ("pacsradar.files.units:SHARE_UNITS",)
FILE_UNIT_MODULES: tuple[str, ...] = ("pacsradar.files.units:FILE_UNITS",)

#: Family name (:data:`pacsradar.families.FAMILIES`) -> its modules, in run order.
MODULES_BY_FAMILY: Mapping[str, tuple[str, ...]] = {
    "dicom": DICOM_CHECK_MODULES,
    "web": WEB_CHECK_MODULES,
    "share": SHARE_UNIT_MODULES,
    "files": FILE_UNIT_MODULES,
}

#: Checks that report another module's specs and import it only when they run (so a DICOM
#: sweep without DICOM-TLS never loads the TLS audit): attempt name -> module defining SPECS.
DELEGATED_SPECS: Mapping[str, str] = {"dicom.tls": "pacsradar.tls.audit"}

AnyUnit = Check[Any] | Unit


def specs_of(unit: AnyUnit) -> tuple[CheckSpec, ...]:
    """What ``unit`` can report: its own specs, plus those it delegates to."""
    delegate = DELEGATED_SPECS.get(unit.name)
    if delegate is None:
        return unit.specs
    extra: tuple[CheckSpec, ...] = importlib.import_module(delegate).SPECS
    return (*unit.specs, *(s for s in extra if s not in unit.specs))


def _load(modules: tuple[str, ...]) -> tuple[Any, ...]:
    checks = tuple(importlib.import_module(name).CHECK for name in modules)
    for name, check in zip(modules, checks, strict=True):
        if not isinstance(check, Check):
            raise TypeError(f"{name}.CHECK is not a Check")
    return checks


def _load_units(ref: str) -> tuple[AnyUnit, ...]:
    module, _, attribute = ref.partition(":")
    value = getattr(importlib.import_module(module), attribute or "CHECK")
    units = tuple(value) if isinstance(value, tuple) else (value,)
    for unit in units:
        if not isinstance(unit, Check | Unit):
            raise TypeError(f"{ref} holds something that is neither a Check nor a Unit")
    return units


@functools.cache
def dicom_checks() -> tuple[Check[DicomContext], ...]:
    return _load(DICOM_CHECK_MODULES)


@functools.cache
def web_checks() -> tuple[Check[WebContext], ...]:
    return _load(WEB_CHECK_MODULES)


@functools.cache
def units(family: str) -> tuple[AnyUnit, ...]:
    """Every unit of one family, in run order."""
    try:
        modules = MODULES_BY_FAMILY[family]
    except KeyError:
        raise KeyError(f"unknown family {family!r}") from None
    return tuple(u for ref in modules for u in _load_units(ref))


def unit_named(family: str, name: str) -> AnyUnit:
    """The unit whose attempts are named ``name`` (e.g. ``share.ftp``)."""
    for unit in units(family):
        if unit.name == name:
            return unit
    raise KeyError(f"no unit {name!r} in family {family!r}")


Intrusiveness = Literal["no", "opt-in", "yes"]


@dataclass(frozen=True)
class CheckInfo:
    """One check id as ``pacsradar checks`` lists it (``nmap --script-help``, ``nuclei -tl``)."""

    id: str
    title: str
    severity: Severity
    #: the families whose units can report it, in :data:`~pacsradar.families.FAMILIES` order
    families: tuple[str, ...]
    #: "yes": only runs with ``--intrusive``; "opt-in": a step of it runs only with it
    intrusive: Intrusiveness
    #: what the opt-in step sends, when there is one
    intrusive_step: str | None
    #: attempt names of the units that report it
    units: tuple[str, ...]
    category: str
    description: str
    remediation: str
    references: tuple[Reference, ...]
    cwe: str | None
    #: what can rate a finding otherwise than ``severity`` (CheckSpec.severity_varies)
    severity_varies: str | None = None

    @property
    def severity_label(self) -> str:
        """``high``, or ``high (varies: ...)`` when findings may be rated otherwise."""
        if self.severity_varies is None:
            return self.severity.value
        return f"{self.severity.value} (varies: {self.severity_varies})"

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity.value,
            "protocol": list(self.families),
            "intrusive": self.intrusive,
            "intrusive_step": self.intrusive_step,
            "units": list(self.units),
            "category": self.category,
            "description": self.description,
            "remediation": self.remediation,
            "references": [r.model_dump() for r in self.references],
            "cwe": self.cwe,
            "severity_varies": self.severity_varies,
        }


def _intrusiveness(spec: CheckSpec, owners: list[AnyUnit]) -> tuple[Intrusiveness, str | None]:
    if spec.intrusive or all(u.intrusive for u in owners):
        return "yes", None
    step = next((u.intrusive_step for u in owners if u.intrusive_step), None)
    return ("opt-in", step) if step else ("no", None)


@functools.cache
def catalogue() -> tuple[CheckInfo, ...]:
    """Every check id once, by family then run order; a duplicate id is a programming error."""
    owners: dict[str, list[tuple[str, AnyUnit]]] = {}
    specs: dict[str, CheckSpec] = {}
    for family in FAMILIES:
        for unit in units(family.name):
            for spec in specs_of(unit):
                if spec.id in specs and specs[spec.id] is not spec:
                    raise RuntimeError(f"duplicate check id {spec.id}")
                specs[spec.id] = spec
                owners.setdefault(spec.id, []).append((family.name, unit))
    out: list[CheckInfo] = []
    for check_id, spec in specs.items():
        owned = owners[check_id]
        intrusive, step = _intrusiveness(spec, [u for _, u in owned])
        out.append(
            CheckInfo(
                id=spec.id,
                title=spec.title,
                severity=spec.severity,
                families=tuple(dict.fromkeys(f for f, _ in owned)),
                intrusive=intrusive,
                intrusive_step=step,
                units=tuple(dict.fromkeys(u.name for _, u in owned)),
                category=spec.category,
                description=spec.description,
                remediation=spec.remediation,
                references=spec.references,
                cwe=spec.cwe,
                severity_varies=spec.severity_varies,
            )
        )
    return tuple(out)


def all_specs() -> dict[str, CheckSpec]:
    """Every check spec by id; a duplicate id is a programming error."""
    specs: dict[str, CheckSpec] = {}
    for family in FAMILIES:
        for unit in units(family.name):
            for spec in specs_of(unit):
                if spec.id in specs and specs[spec.id] is not spec:
                    raise RuntimeError(f"duplicate check id {spec.id}")
                specs[spec.id] = spec
    return specs


def family_of(check_id: str) -> str | None:
    """The first family that reports ``check_id`` (``None`` for an id no unit declares)."""
    return next((c.families[0] for c in catalogue() if c.id == check_id), None)


__all__ = [
    "DELEGATED_SPECS",
    "DICOM_CHECK_MODULES",
    "FILE_UNIT_MODULES",
    "MODULES_BY_FAMILY",
    "SHARE_UNIT_MODULES",
    "WEB_CHECK_MODULES",
    "CheckInfo",
    "all_specs",
    "catalogue",
    "dicom_checks",
    "family_of",
    "specs_of",
    "unit_named",
    "units",
    "web_checks",
]
