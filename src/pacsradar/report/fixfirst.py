"""What to fix first: the findings of a scan folded into actions, ranked by the patients they protect.

A board does not fix findings, it funds actions. Several checks share one remediation (an
Orthanc that answers C-FIND, C-MOVE and C-STORE to any AE title needs one change: a calling-AE
allow-list), and one remediation applied to every server of one product is one work item. So
an action is keyed by (remediation theme, product), and lists its services and the
product-aware steps of each check behind it (:meth:`pacsradar.checks.CheckSpec.remediation_for`
already wrote them into the findings).

An action *protects* the patients exposed on the services it touches: the union of the keyed
patient hashes (:class:`~pacsradar.models.Holdings`) of the exposure findings on those
(host, port, protocol) services, so a patient two services expose counts once. A service that
reported counts without hashes (a JSON report re-imported, Orthanc ``/statistics``) adds its
count as a lower bound, never summed with the union (the same rule as the headline,
:mod:`pacsradar.report.exposure`). Ranking: patients protected, then the worst severity, then
the number of services. Informational findings are not actions, and findings of a suspected
honeypot are left out (verify out of band first, README "Honeypots").

Pure functions of the findings: the HTML report, the PDF and the dashboard overview use them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pacsradar.models import Finding, Reference, Severity
from pacsradar.report.exposure import EXPOSURE_CHECK_IDS, count

#: theme -> (the action, as a board reads it; the checks it fixes).
THEMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "dicom-access": (
        "Restrict DICOM associations to registered peers",
        (
            "DICOM-QUERY-PHI",
            "DICOM-RETRIEVE-OPEN",
            "DICOM-ANY-AE",
            "DICOM-STORE-OPEN",
            "DICOM-AE-GUESSABLE",
            "DICOM-USER-IDENTITY-IGNORED",
        ),
    ),
    "web-auth": (
        "Require authentication",
        (
            "WEB-UNAUTH-PHI",
            "DICOMWEB-UNAUTH-WADO",
            "DICOMWEB-UNAUTH-QIDO",
            "DICOMWEB-STOW-OPEN",
            "WEB-WEBDAV-OPEN",
            "WEB-ORTHANC-INSECURE",
        ),
    ),
    "credentials": (
        "Remove default and blank passwords",
        ("WEB-DEFAULT-CREDENTIALS", "WEB-BLANK-CREDENTIALS"),
    ),
    "upgrade": ("Upgrade to a fixed release", ("DICOM-KNOWN-CVE", "VULN-KNOWN-CVE")),
    "shares": ("Close anonymous shares", ("SHARE-ANON-DICOM", "SHARE-ANON-ACCESS")),
    "files": ("Restrict and clean the image files", ("FILE-PHI", "FILE-PREAMBLE-EXECUTABLE")),
    "encrypt": ("Encrypt the traffic (TLS)", ("DICOM-PLAINTEXT", "WEB-PLAINTEXT")),
    "tls": ("Harden the TLS set-up", ("TLS-WEAK", "TLS-NO-CLIENT-AUTH", "TLS-CERTIFICATE")),
    "cors": ("Restrict cross-origin access", ("WEB-CORS-WILDCARD",)),
    "metrics": ("Restrict the metrics endpoint", ("WEB-METRICS-OPEN",)),
}
#: Themes that close the door to the data: only they claim the patients of their services.
#: Encrypting a link or upgrading a server that answers anyone does not stop the next query.
ACCESS_THEMES: frozenset[str] = frozenset({"dicom-access", "web-auth", "credentials", "shares", "files"})
_THEME_OF: dict[str, str] = {check: theme for theme, (_, checks) in THEMES.items() for check in checks}
#: check id -> its place in its theme (the order steps are listed in).
_STEP_ORDER: dict[str, int] = {check: i for _, checks in THEMES.values() for i, check in enumerate(checks)}

#: Product names we group by, matched case-insensitively inside the (hostile, bounded) product
#: text a peer announced; the first match wins, so longer names come first.
PRODUCTS: tuple[str, ...] = (
    "dcm4chee",
    "dcm4che",
    "Orthanc",
    "DCMTK",
    "pynetdicom",
    "Conquest",
    "Dicoogle",
    "XNAT",
    "Horos",
    "WildFly",
    "samba",
    "vsftpd",
    "nginx",
)

Service = tuple[str, int, str]


@dataclass(frozen=True)
class Step:
    check_id: str
    title: str
    text: str


@dataclass(frozen=True)
class FixAction:
    """One work item: a remediation on the services of one product."""

    theme: str
    action: str
    #: the product name we grouped by (one of :data:`PRODUCTS`), or None when unknown
    product: str | None
    severity: Severity
    #: "host:port" labels, sorted
    services: tuple[str, ...]
    hosts: tuple[str, ...]
    #: (host, its ports) in host order: the services as a person scans them ("192.0.2.1 :104 :8042")
    host_ports: tuple[tuple[str, tuple[int, ...]], ...]
    check_ids: tuple[str, ...]
    findings: int
    patients: int
    #: distinct patients on the services it touches (context for actions that do not gate access)
    at_risk: int
    #: some service counted without identities or stopped at --max-records
    lower_bound: bool
    steps: tuple[Step, ...]
    references: tuple[Reference, ...]
    #: dedupe keys of the findings behind the action (links from the finding rows)
    keys: tuple[str, ...]

    @property
    def where(self) -> str:
        n = len(self.hosts)
        noun = "server" if n == 1 else "servers"
        return f"{n} {self.product} {noun}" if self.product else f"{n} {noun}"

    @property
    def protects(self) -> str:
        bound = "at least " if self.lower_bound else ""
        if self.patients:
            return f"{bound}{self.patients:,} {'patient' if self.patients == 1 else 'patients'}"
        text = f"{self.severity.value}, {self.findings} {'finding' if self.findings == 1 else 'findings'}"
        if self.at_risk:
            text += f" (on services holding {bound}{self.at_risk:,} patients)"
        return text

    @property
    def headline(self) -> str:
        """'Require authentication on 2 Orthanc servers: 20 patients'."""
        return f"{self.action} on {self.where}: {self.protects}"


def product_name(product: str | None) -> str | None:
    """The known product named in a peer's product text, or None."""
    if not product:
        return None
    low = product.lower()
    return next((name for name in PRODUCTS if name.lower() in low), None)


def _service(f: Finding) -> Service:
    return (f.endpoint.host, f.endpoint.port, f.endpoint.protocol)


@dataclass
class _Exposed:
    hashes: set[str]
    unlinked: int = 0
    truncated: bool = False


def _exposed_by_service(findings: Iterable[Finding]) -> dict[Service, _Exposed]:
    out: dict[Service, _Exposed] = {}
    for f in findings:
        if f.check_id not in EXPOSURE_CHECK_IDS or f.suspected_honeypot:
            continue
        seen = out.setdefault(_service(f), _Exposed(set()))
        seen.truncated |= f.evidence.get("truncated") is True
        if f.holdings is not None and f.holdings.patients:
            seen.hashes.update(f.holdings.patients)
            seen.truncated |= f.holdings.truncated
        else:
            seen.unlinked = max(seen.unlinked, count(f.evidence.get("patients")))
    return out


def fix_first(findings: Iterable[Finding]) -> tuple[FixAction, ...]:
    """The actions of ``findings``, the one protecting the most patients first."""
    items = [f for f in findings if f.severity is not Severity.INFO and not f.suspected_honeypot]
    exposed = _exposed_by_service(items)
    groups: dict[tuple[str, str | None], list[Finding]] = {}
    for f in items:
        theme = _THEME_OF.get(f.check_id, f.check_id)
        groups.setdefault((theme, product_name(f.product)), []).append(f)
    actions = [_action(theme, product, group, exposed) for (theme, product), group in groups.items()]
    actions.sort(key=lambda a: (-a.patients, -a.severity.rank, -len(a.services), a.action, a.product or ""))
    return tuple(actions)


def _action(
    theme: str, product: str | None, group: list[Finding], exposed: dict[Service, _Exposed]
) -> FixAction:
    services = sorted({_service(f) for f in group})
    hashes: set[str] = set()
    unlinked = 0
    lower = False
    for s in services:
        seen = exposed.get(s)
        if seen is None:
            continue
        hashes |= seen.hashes
        unlinked = max(unlinked, seen.unlinked)
        lower |= bool(seen.unlinked) or seen.truncated
    at_risk = max(len(hashes), unlinked)
    patients = at_risk if theme in ACCESS_THEMES else 0
    steps: dict[str, Step] = {}
    refs: dict[tuple[str, str | None], Reference] = {}
    for f in sorted(group, key=lambda f: (_STEP_ORDER.get(f.check_id, 99), -f.severity.rank, f.check_id)):
        text = f.remediation or f.title
        if text not in steps:
            steps[text] = Step(check_id=f.check_id, title=f.title, text=text)
        for r in f.references:
            refs.setdefault((r.title, r.url), r)
    action = THEMES[theme][0] if theme in THEMES else f"Fix: {group[0].title}"
    return FixAction(
        theme=theme,
        action=action,
        product=product,
        severity=max((f.severity for f in group), key=lambda s: s.rank),
        services=tuple(_label(s) for s in services),
        hosts=tuple(sorted({s[0] for s in services})),
        host_ports=tuple(
            (host, tuple(sorted({p for h, p, proto in services if h == host and proto != "file"})))
            for host in sorted({s[0] for s in services})
        ),
        check_ids=tuple(sorted({f.check_id for f in group}, key=lambda c: (_STEP_ORDER.get(c, 99), c))),
        findings=len(group),
        patients=patients,
        at_risk=at_risk,
        lower_bound=lower and at_risk > 0,
        steps=tuple(steps.values()),
        references=tuple(refs.values()),
        keys=tuple(f.dedupe_key for f in group),
    )


def _label(s: Service) -> str:
    host, port, protocol = s
    if protocol == "file":
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def action_of(actions: Iterable[FixAction]) -> dict[str, int]:
    """dedupe key -> the 1-based rank of the action that fixes it."""
    return {key: rank for rank, a in enumerate(actions, 1) for key in a.keys}


__all__ = [
    "ACCESS_THEMES",
    "PRODUCTS",
    "THEMES",
    "FixAction",
    "Step",
    "action_of",
    "fix_first",
    "product_name",
]
