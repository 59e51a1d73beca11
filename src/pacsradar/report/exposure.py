"""The estate headline: how many distinct patients, studies and images a scan proved exposed.

Two figures, never confused (issue 16):

* **Per service** - each exposure finding keeps its own counts under the evidence keys
  ``patients``, ``studies`` and ``images`` (distinct within that service). Their sum counts a
  patient once per service that exposes them; it is shown as such, never as the headline.
* **Distinct across the scan** - the headline. Exposure findings carry keyed hashes of what
  they exposed (:class:`pacsradar.models.Holdings`: PatientID and issuer as two hashes,
  StudyInstanceUID, with the per-study image count). The headline is the size of the union over
  every service and host; images are, per distinct study, the largest count any service reported
  for it. Patients are joined by :func:`pacsradar.identity.link` (issue 22: a service that leaves
  IssuerOfPatientID out still names the same patient), and ``patients_by_link`` says how many
  patients each rule identified; a PatientID seen under several issuers and also without one is
  ambiguous, left out, and makes the figure "at least".
  Hashes are keyed per scan (``--link-key`` links scans) and are never values.

A service that proved counts but no hashes (Orthanc's ``/statistics`` without DICOMweb, file
shares) cannot be de-duplicated: the headline then takes the larger of the union and that
service's count, and says "at least". A count that is missing, not an integer, or a boolean
counts as 0. The figure is a lower bound we can defend, never an inflated one.

Findings of a suspected honeypot (``Finding.suspected_honeypot``, README "Honeypots") are left out
and counted apart as ``honeypots`` services, unless ``count_honeypots`` asks to include them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from pacsradar.identity import RULES, PatientRecord, legacy_record, link
from pacsradar.models import EvidenceValue, Finding

#: Check ids whose evidence carries ``patients``/``studies``/``images`` counts.
EXPOSURE_CHECK_IDS: frozenset[str] = frozenset(
    {"DICOM-QUERY-PHI", "WEB-UNAUTH-PHI", "SHARE-ANON-DICOM", "FILE-PHI"}
    | {"DICOM-WORKLIST-PHI", "DICOM-UPS-PHI", "WEB-UPS-PHI"}  # scheduled work (issue 24)
)
COUNT_KEYS: tuple[str, ...] = ("patients", "studies", "images")


class Exposure(BaseModel):
    """The headline (distinct across the scan) plus what each service exposed on its own."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: distinct across every service and host (the headline)
    patients: int = 0
    studies: int = 0
    images: int = 0
    #: services (host, port, protocol) with an exposure finding
    services: int = 0
    #: sums of each service's own counts: a patient exposed by three services counts three times
    service_patients: int = 0
    service_studies: int = 0
    service_images: int = 0
    #: how many services expose each distinct patient / study: {services: how many}
    patients_by_services: dict[int, int] = Field(default_factory=dict)
    studies_by_services: dict[int, int] = Field(default_factory=dict)
    #: distinct patients by the rule that identified them (pacsradar.identity): "issuer"
    #: (PatientID and issuer matched), "one_issuer" (a record without issuer joined the one
    #: issuer its PatientID has in the estate), "no_issuer" (no record carried one), "legacy"
    patients_by_link: dict[str, int] = Field(default_factory=dict)
    #: PatientIDs seen without issuer and under two or more issuers: not counted (at least)
    patients_ambiguous: int = 0
    #: services whose counts came without keyed hashes (not de-duplicable)
    unlinked_services: int = 0
    #: True when a service stopped at --max-records or could not be de-duplicated
    lower_bound: bool = False
    #: services whose findings carry the suspected-honeypot mark (not in the counts above)
    honeypots: int = 0
    #: distinct patients per holdings source ("archive", "worklist"; models.Holdings.source),
    #: and how many of them were seen in more than one source (issue 24)
    patients_by_source: dict[str, int] = Field(default_factory=dict)
    patients_in_several_sources: int = 0

    @property
    def sentence(self) -> str:
        """The headline, distinct across the scan."""
        if self.services == 0:
            # Not "0 patients ... exposed across 0 services" beside a high-severity service:
            # no check proved patient data readable, which is not the same as no risk.
            text = "No patient data proven exposed (see the findings for what is open)"
        else:
            bound = "at least " if self.lower_bound else ""
            text = (
                f"{bound}{self.patients:,} distinct {_plural(self.patients, 'patient')}, "
                f"{self.studies:,} {_plural(self.studies, 'study', 'studies')}, "
                f"{self.images:,} {_plural(self.images, 'image')} exposed across "
                f"{self.services:,} {_plural(self.services, 'service')}"
            )
            text += source_clause(self.patients_by_source, self.patients_in_several_sources)
        if self.honeypots:
            look = "looks" if self.honeypots == 1 else "look"
            services = _plural(self.honeypots, "service")
            text += f"; {self.honeypots:,} {services} {look} like honeypots (not counted)"
        return text

    @property
    def link_sentence(self) -> str:
        """How the distinct patients were told apart, or "" when there is nothing to say."""
        parts = [
            f"{n:,} {_LINK_LABELS[rule]}" for rule in RULES if (n := self.patients_by_link.get(rule, 0))
        ]
        if self.patients_ambiguous:
            parts.append(
                f"{self.patients_ambiguous:,} PatientID{'s' if self.patients_ambiguous != 1 else ''} seen "
                "without an issuer and under several issuers not counted (so: at least)"
            )
        if not parts:
            return ""
        return "Patient identity: " + "; ".join(parts)

    @property
    def per_service_sentence(self) -> str:
        """What the services expose added up, with the overlap said out loud."""
        text = (
            f"Per service (each service counted on its own, so shared patients count once per "
            f"service): {self.service_patients:,} patients, {self.service_studies:,} studies, "
            f"{self.service_images:,} images"
        )
        shared = sum(n for k, n in self.patients_by_services.items() if k > 1)
        if shared:
            widest = max(self.patients_by_services)
            text += (
                f"; {shared:,} of the {self.patients:,} distinct patients are exposed by more than one "
                f"service (up to {widest})"
            )
        if self.unlinked_services:
            text += (
                f"; {self.unlinked_services} service{'s' if self.unlinked_services != 1 else ''} "
                "reported counts without identities and could not be de-duplicated"
            )
        return text


_LINK_LABELS = {
    "issuer": "matched by PatientID and issuer",
    "one_issuer": "linked by PatientID where a service left the issuer out (one issuer in the estate)",
    "no_issuer": "by PatientID alone (no service sent an issuer)",
    "legacy": "by hashes of an older scan (not linkable)",
}

#: how each holdings source reads in the headline's breakdown
SOURCE_WORDS = {"archive": "in archives", "worklist": "scheduled in worklists"}


def source_clause(by_source: dict[str, int], shared: int) -> str:
    """'(20 patients in archives, 5 scheduled in worklists, 3 in both)'; nothing when every
    patient came from archives (the headline then reads as it always did)."""
    if not by_source or set(by_source) == {"archive"}:
        return ""
    words = SOURCE_WORDS
    parts = [f"{n:,} {_plural(n, 'patient')} {words.get(s, 'from ' + s)}" for s, n in by_source.items()]
    if len(parts) == 1:
        return f" ({parts[0]})"
    both = "both" if len(by_source) == 2 else "more than one"
    return f" ({', '.join(parts)}, {shared:,} in {both})"


def _plural(n: int, one: str, many: str | None = None) -> str:
    return one if n == 1 else (many or one + "s")


def count(value: EvidenceValue) -> int:
    """An evidence count, or 0 when missing or not a non-negative integer."""
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return max(value, 0)


def exposure_of(findings: Iterable[Finding], *, count_honeypots: bool = False) -> Exposure:
    # tag of a record: (service, holdings source), so one patient is counted once per service and
    # once per source (an archive and a worklist on the same port are two sources, one service)
    records: list[tuple[PatientRecord, tuple[tuple[str, int, str], str]]] = []
    studies: dict[str, set[tuple[str, int, str]]] = {}
    study_images: dict[str, int] = {}
    per_service: dict[tuple[str, int, str], list[int]] = {}
    unlinked: set[tuple[str, int, str]] = set()
    unlinked_best = [0, 0, 0]
    truncated = False
    honeypots: set[tuple[str, int, str]] = set()
    for f in findings:
        if f.suspected_honeypot:
            honeypots.add((f.endpoint.host, f.endpoint.port, f.endpoint.protocol))
            if not count_honeypots:
                continue
        if f.check_id not in EXPOSURE_CHECK_IDS:
            continue
        service = (f.endpoint.host, f.endpoint.port, f.endpoint.protocol)
        counts = [count(f.evidence.get(key)) for key in COUNT_KEYS]
        if "images" not in f.evidence:  # the file audit counts DICOM files as "instances"
            counts[2] = count(f.evidence.get("instances"))
        best = per_service.setdefault(service, [0, 0, 0])
        for i in range(3):
            best[i] = max(best[i], counts[i])
        truncated |= f.evidence.get("truncated") is True
        h = f.holdings
        # Each dimension is linked only if the service sent hashes for it; otherwise its count
        # is kept aside as a lower bound (module docstring).
        linked = (
            bool(h and (h.patient_records or h.patients)) or counts[0] == 0,
            bool(h and h.studies) or counts[1] == 0,
            bool(h and h.studies and any(n >= 0 for n in h.study_images)) or counts[2] == 0,
        )
        if h is not None:
            truncated |= h.truncated
            # Anything but scheduled work is stored studies (a label once written as "web").
            tag = (service, "worklist" if h.source == "worklist" else "archive")
            records.extend((r, tag) for r in h.patient_records)
            records.extend((legacy_record(p), tag) for p in h.patients)
            for s, n in zip(h.studies, h.study_images, strict=False):
                studies.setdefault(s, set()).add(service)
                if n >= 0:
                    study_images[s] = max(study_images.get(s, 0), n)
            for s in h.studies[len(h.study_images) :]:
                studies.setdefault(s, set()).add(service)
        if not all(linked):
            unlinked.add(service)
        for i in range(3):
            if not linked[i]:
                unlinked_best[i] = max(unlinked_best[i], counts[i])
    linkage = link(records)
    patients = {key: {service for service, _ in tags} for key, tags in linkage.patients.items()}
    sources = [{source for _, source in tags} for tags in linkage.patients.values()]
    union = (len(patients), len(studies), sum(study_images.values()))
    headline = [max(union[i], unlinked_best[i]) for i in range(3)]
    sums = [sum(v[i] for v in per_service.values()) for i in range(3)]
    return Exposure(
        patients=headline[0],
        studies=headline[1],
        images=headline[2],
        services=len(per_service),
        service_patients=sums[0],
        service_studies=sums[1],
        service_images=sums[2],
        patients_by_services=dict(sorted(Counter(len(v) for v in patients.values()).items())),
        studies_by_services=dict(sorted(Counter(len(v) for v in studies.values()).items())),
        patients_by_link={k: v for k, v in linkage.by_rule().items() if v},
        patients_ambiguous=linkage.ambiguous,
        unlinked_services=len(unlinked),
        lower_bound=truncated or any(unlinked_best) or linkage.ambiguous > 0,
        honeypots=0 if count_honeypots else len(honeypots),
        patients_by_source=dict(sorted(Counter(s for ss in sources for s in ss).items())),
        patients_in_several_sources=sum(1 for ss in sources if len(ss) > 1),
    )


__all__ = ["COUNT_KEYS", "EXPOSURE_CHECK_IDS", "Exposure", "count", "exposure_of"]
