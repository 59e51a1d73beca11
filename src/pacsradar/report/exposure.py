"""The headline figure: how many patients, studies and images are exposed, across how many services.

The checks that prove exposure put integer counts under the evidence keys ``patients``,
``studies`` and ``images`` (never the identities themselves, see HACKING.md rule 1). A key that
is missing, not an integer, or a boolean counts as 0.

One archive is often reachable through several services of the same host (Orthanc answers
DICOM C-FIND on 4242 and REST on 8042). Adding those up would count the same patients twice, so
per host we keep the largest count any one service proved, and add hosts up. The figure is a
lower bound that we can defend, never an inflated one.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from pacsradar.models import EvidenceValue, Finding

#: Check ids whose evidence carries ``patients``/``studies``/``images`` counts.
EXPOSURE_CHECK_IDS: frozenset[str] = frozenset({"DICOM-QUERY-PHI", "WEB-UNAUTH-PHI", "SHARE-ANON-DICOM"})
COUNT_KEYS: tuple[str, ...] = ("patients", "studies", "images")


class Exposure(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    patients: int = 0
    studies: int = 0
    images: int = 0
    services: int = 0

    @property
    def sentence(self) -> str:
        if self.services == 0:
            # Not "0 patients ... exposed across 0 services" beside a high-severity service:
            # no check proved patient data readable, which is not the same as no risk.
            return "No patient data proven exposed (see the findings for what is open)"
        return (
            f"{self.patients:,} {_plural(self.patients, 'patient')}, "
            f"{self.studies:,} {_plural(self.studies, 'study', 'studies')}, "
            f"{self.images:,} {_plural(self.images, 'image')} exposed across "
            f"{self.services:,} {_plural(self.services, 'service')}"
        )


def _plural(n: int, one: str, many: str | None = None) -> str:
    return one if n == 1 else (many or one + "s")


def count(value: EvidenceValue) -> int:
    """An evidence count, or 0 when missing or not a non-negative integer."""
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return max(value, 0)


def exposure_of(findings: Iterable[Finding]) -> Exposure:
    per_host: dict[str, list[int]] = {}
    services: set[tuple[str, int, str]] = set()
    for f in findings:
        if f.check_id not in EXPOSURE_CHECK_IDS:
            continue
        services.add((f.endpoint.host, f.endpoint.port, f.endpoint.protocol))
        best = per_host.setdefault(f.endpoint.host, [0, 0, 0])
        for i, key in enumerate(COUNT_KEYS):
            best[i] = max(best[i], count(f.evidence.get(key)))
    totals = [sum(v[i] for v in per_host.values()) for i in range(3)]
    return Exposure(patients=totals[0], studies=totals[1], images=totals[2], services=len(services))


__all__ = ["COUNT_KEYS", "EXPOSURE_CHECK_IDS", "Exposure", "count", "exposure_of"]
