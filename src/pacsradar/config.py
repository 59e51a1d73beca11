"""Scan configuration: explicit limits and options, passed down, never global."""

from __future__ import annotations

from dataclasses import dataclass, field

from pacsradar.families import SCAN_FAMILIES
from pacsradar.phi import KeyedHasher

#: DICOM ports probed by default (see shared/reference/dicom_default_ports.csv):
#: 104 well-known (PS3.8 §9.1.2 / IANA acr-nema), 11112 IANA dicom, 4242 Orthanc, 2761 ISCL,
#: 2762 DICOM-TLS, 2345 and 5678 (Conquest) common in the field.
DEFAULT_DICOM_PORTS: tuple[int, ...] = (104, 11112, 4242, 2761, 2762, 2345, 5678)
#: Web ports probed by default: PACS portals, Orthanc REST, dcm4chee, OHIF, Horos portal, WildFly.
DEFAULT_WEB_PORTS: tuple[int, ...] = (80, 443, 8042, 8080, 8443, 3000, 3333, 9990)
#: File-share ports probed by default: anonymous FTP and SMB guest/null sessions.
DEFAULT_SHARE_PORTS: tuple[int, ...] = (21, 445)
#: Ports where a TLS handshake is tried first (DICOM-TLS, HTTPS).
TLS_FIRST_PORTS: frozenset[int] = frozenset({2762, 443, 8443})


#: The TCP gates a sweep may use (``Limits.gate``).
GATES: tuple[str, ...] = ("auto", "connect", "syn")


@dataclass(frozen=True)
class Limits:
    """Every network step has a timeout and a size bound (README 'Safety')."""

    #: Upper bound on endpoints in flight; 0: sized from rate x connect timeout (pools.size_pools).
    concurrency: int = 0
    per_host: int = 4
    rate: float = 1000.0  # new TCP connections per second; 0 disables the limit
    connect_timeout: float = 3.0
    read_timeout: float = 5.0
    #: Seconds a peer gets to answer our A-ASSOCIATE-RQ. DICOM servers answer in milliseconds
    #: (the answer needs no database work); a peer still silent after this is reported as "no
    #: answer" (an error attempt: could not test), never as safe. Raise it for slow links.
    assoc_timeout: float = 2.0
    #: A peer that accepted TCP and stayed silent for ``assoc_timeout`` gets one longer listen,
    #: up to this many seconds from our A-ASSOCIATE-RQ, on the same connection, before it is
    #: "no answer": dicompot with AE enforcement sleeps 5 s before its A-ASSOCIATE-RJ (issue
    #: 22). Endpoints run concurrently, so only the silent one waits. Below ``assoc_timeout``:
    #: no longer listen.
    silent_listen: float = 8.0
    target_deadline: float = 60.0
    max_pdu_bytes: int = 4 * 1024 * 1024  # cap on any single PDU a peer announces
    max_body_bytes: int = 2 * 1024 * 1024  # cap on any HTTP body we read
    #: How a sweep learns that a port answers (:data:`GATES`): ``"connect"`` (one socket per
    #: endpoint), ``"syn"`` (one raw socket for all: :mod:`pacsradar.syngate`, root), or
    #: ``"auto"``: SYN only when the open-file limit cannot hold what ``rate`` needs.
    gate: str = "auto"

    def __post_init__(self) -> None:
        if self.gate not in GATES:
            raise ValueError(f"gate must be one of {', '.join(GATES)}")


@dataclass(frozen=True)
class ScanOptions:
    limits: Limits = field(default_factory=Limits)
    #: protocol families to run (:data:`pacsradar.families.SCAN_FAMILIES`)
    only: frozenset[str] = frozenset(SCAN_FAMILIES)
    dicom_ports: tuple[int, ...] = DEFAULT_DICOM_PORTS
    web_ports: tuple[int, ...] = DEFAULT_WEB_PORTS
    share_ports: tuple[int, ...] = DEFAULT_SHARE_PORTS
    extra_ports: tuple[int, ...] = ()
    #: ports of imported endpoints (masscan, nmap...): the DICOM and web audits try them as they
    #: try ``extra_ports``, but they are not probed on every host (not in :meth:`ports`)
    import_ports: frozenset[int] = frozenset()
    calling_aet: str = "PACSRADAR"
    max_records: int = 10_000
    intrusive: bool = False
    aet_wordlist: tuple[str, ...] = ()
    hasher: KeyedHasher = field(default_factory=KeyedHasher)
    #: a DICOM service scoring this or more (0-100) is a suspected honeypot (README "Honeypots")
    honeypot_threshold: int = 50
    #: count suspected honeypots in the headline exposure anyway
    count_honeypots: bool = False

    def ports(self) -> tuple[int, ...]:
        ports: list[int] = []
        if "dicom" in self.only:
            ports.extend(self.dicom_ports)
        if "web" in self.only:
            ports.extend(self.web_ports)
        if "share" in self.only:
            ports.extend(self.share_ports)
        ports.extend(self.extra_ports)
        return tuple(dict.fromkeys(ports))

    def tries(self, port: int, family_ports: tuple[int, ...]) -> bool:
        """Whether an audit whose own ports are ``family_ports`` tries ``port``."""
        return port in family_ports or port in self.extra_ports or port in self.import_ports
