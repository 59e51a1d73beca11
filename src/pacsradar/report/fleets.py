"""Fleets: services of one scan whose fingerprints are identical (issue 22, part 5).

A fleet is two or more services that answered with the same configuration: for DICOM the same
implementation (Implementation Class UID and Version Name, PS3.7 D.3.3.2), maximum PDU length
(PS3.8 D.1), accepted presentation contexts, TLS, and the same rejection behaviour (random AE
titles accepted or the same A-ASSOCIATE-RJ reason, PS3.8 Table 9-21; C-FIND refused); for the
web the same product, version, components, Server header and authentication answer. One
exploit, one misconfiguration or one default password then reaches all of them: a published
survey of internet-facing DICOM servers found 44% in such clusters. Among real archives a
fleet is common (one vendor image rolled out per site); a fleet in which one member looks like
a honeypot suggests the rest are sensors too (README "Honeypots").

A pure function of the facts the probes already recorded (the ``dicom.service``,
``dicom.any_ae``, ``dicom.query`` and ``web.fingerprint`` attempt details); no traffic, no PHI:
the fields are implementation identifiers, sizes, SOP class names and status codes. Peer text
(a version name, a Server header) is bounded here and escaped by every renderer.

A rejected association carries no implementation identity (A-ASSOCIATE-RJ has no user
information, PS3.8 §9.3.4), so a DICOM service that rejected us is grouped (by its reject
codes) only when something else named its product: two unrelated archives that both reject
an unknown AE title are not a fleet.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field

from pacsradar.models import EvidenceValue, TargetResult
from pacsradar.phi import peer_text

#: Listed members per fleet; ``size`` is always the full count.
MAX_MEMBERS = 256

# (attempt check, detail keys) that make up the configuration of each family.
_DICOM_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "dicom.service",
        (
            "tls",
            "association",
            "implementation_class_uid",
            "implementation_version_name",
            "max_pdu",
            "accepted_contexts",
        ),
    ),
    ("dicom.any_ae", ("accepts_random_called_aet", "accepts_random_calling_aet", "rejection")),
    ("dicom.query", ("find_negotiated", "refused")),
)
_DICOM_REJECTED: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "dicom.service",
        ("tls", "association", "rj_result", "rj_source", "rj_reason", "abort_source", "abort_reason"),
    ),
)
_WEB_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "web.fingerprint",
        ("scheme", "product", "version", "components", "server", "auth_required", "login_form"),
    ),
)


class Fleet(BaseModel):
    """Services of the scan that share one configuration."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: how many services share it
    size: int
    family: str
    #: the product label our fingerprint gave, bounded peer text
    product: str | None = None
    #: a digest of the shared configuration: the same across scans for the same configuration
    key: str
    #: the shared configuration (implementation identifiers, sizes, SOP class names, codes)
    fingerprint: dict[str, EvidenceValue] = Field(default_factory=dict)
    #: distinct hosts among the members
    hosts: int = 0
    #: members (host:port), at most MAX_MEMBERS
    services: tuple[str, ...] = ()
    #: members marked as suspected honeypots (DICOM-HONEYPOT-SUSPECT)
    honeypots: int = 0


class Fleets(BaseModel):
    """The fleets of one scan, largest first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: services with a fingerprint to compare
    fingerprinted: int = 0
    #: of those, members of a fleet
    in_fleets: int = 0
    fleets: tuple[Fleet, ...] = ()

    @property
    def sentence(self) -> str:
        """``12 services share one configuration (Orthanc 1.10.1); ...``, or "" with no fleet."""
        if not self.fleets:
            return ""
        parts = []
        for i, fleet in enumerate(self.fleets[:3]):
            what = "one configuration" if i == 0 else "another"
            label = f" ({fleet.product})" if fleet.product else f" ({fleet.family})"
            part = f"{fleet.size:,} services share {what}{label}"
            if fleet.honeypots:
                part += f", {fleet.honeypots:,} of them suspected honeypots"
            parts.append(part)
        if len(self.fleets) > 3:
            parts.append(f"{len(self.fleets) - 3:,} more fleets")
        share = 100 * self.in_fleets // max(self.fingerprinted, 1)
        return (
            f"Fleets: {'; '.join(parts)}. {self.in_fleets:,} of {self.fingerprinted:,} fingerprinted "
            f"services ({share}%) are in fleets, where one exploit reaches every member"
        )


def _attempt_details(result: TargetResult) -> dict[str, Mapping[str, EvidenceValue]]:
    return {a.check: a.details for a in result.attempts}


def fingerprint(result: TargetResult) -> tuple[str, dict[str, EvidenceValue]] | None:
    """(family, configuration) of one service, or None when it gave nothing to compare."""
    details = _attempt_details(result)
    service = details.get("dicom.service")
    if service is not None:
        if service.get("dicom") is not True:
            return None
        if service.get("implementation_class_uid"):
            return "dicom", _pick(details, _DICOM_FIELDS)
        if not result.product:
            return None  # rejected or aborted, and nothing else named the implementation
        config = _pick(details, _DICOM_REJECTED)
        config["product"] = peer_text(result.product, 200)
        return "dicom", config
    web = details.get("web.fingerprint")
    if web is not None and (web.get("product") or web.get("server")):
        return "web", _pick(details, _WEB_FIELDS)
    return None


def _pick(
    details: Mapping[str, Mapping[str, EvidenceValue]], fields: tuple[tuple[str, tuple[str, ...]], ...]
) -> dict[str, EvidenceValue]:
    out: dict[str, EvidenceValue] = {}
    for check, keys in fields:
        got = details.get(check, {})
        for key in keys:
            if key in got:
                out[key] = _bounded(got[key])
    return out


def _bounded(value: EvidenceValue) -> EvidenceValue:
    if isinstance(value, str):
        return peer_text(value, 200)
    if isinstance(value, list):
        head = value[:512]
        if all(isinstance(v, str) for v in head):
            return [peer_text(v, 200) for v in head]
        return head
    return value


def fleets_of(results: Iterable[TargetResult]) -> Fleets:
    """Group the services of a scan by identical fingerprint (module docstring)."""
    groups: dict[str, list[TargetResult]] = {}
    configs: dict[str, tuple[str, dict[str, EvidenceValue]]] = {}
    fingerprinted = 0
    for result in results:
        if not result.reachable:
            continue
        got = fingerprint(result)
        if got is None:
            continue
        fingerprinted += 1
        family, config = got
        key = hashlib.sha256(json.dumps([family, config], sort_keys=True).encode()).hexdigest()[:16]
        groups.setdefault(key, []).append(result)
        configs[key] = got
    fleets = []
    for key, members in groups.items():
        if len(members) < 2:
            continue
        family, config = configs[key]
        labels = sorted({m.endpoint.label for m in members})
        products = sorted({m.product for m in members if m.product})
        fleets.append(
            Fleet(
                size=len(members),
                family=family,
                product=peer_text(products[0], 120) if products else None,
                key=key,
                fingerprint=config,
                hosts=len({m.endpoint.host for m in members}),
                services=tuple(labels[:MAX_MEMBERS]),
                honeypots=sum(1 for m in members if any(f.suspected_honeypot for f in m.findings)),
            )
        )
    fleets.sort(key=lambda f: (-f.size, f.family, f.key))
    return Fleets(
        fingerprinted=fingerprinted,
        in_fleets=sum(f.size for f in fleets),
        fleets=tuple(fleets),
    )


__all__ = ["MAX_MEMBERS", "Fleet", "Fleets", "fingerprint", "fleets_of"]
