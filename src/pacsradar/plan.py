"""The frozen plan of one scan: what it touches and how. Plain, versioned, picklable data.

* **The plan is the scope.** Targets, exclusions, imported endpoints, ports, protocol families,
  limits, timeouts and check options are one frozen, versioned value. The store keeps it with
  the scan and ``--resume`` restores exactly that value, so a resumed scan can never widen the
  scope (issue 12 point 1). A plan that cannot be restored is refused with a clear error.
* **The plan is plain data.** It pickles and round-trips through JSON: no socket, store, logger
  or key in it, so it can be shipped to another process (a Dask worker) and expanded there.
  The link key is never part of it: only ``link_key_id``, a one-way id that lets a resume check
  that the user supplied the same key again.
* **Exclusions win everywhere.** :meth:`ScanPlan.endpoints` re-checks every endpoint against the
  exclusions; a worker that only has the plan applies the same rules.

:mod:`pacsradar.session` runs a plan (and re-exports everything here).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import socket
from collections.abc import Container, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pacsradar.config import (
    DEFAULT_DICOM_PORTS,
    DEFAULT_SHARE_PORTS,
    DEFAULT_WEB_PORTS,
    Limits,
    ScanOptions,
)
from pacsradar.errors import TargetError, UsageError
from pacsradar.families import SCAN_FAMILIES
from pacsradar.models import Endpoint
from pacsradar.phi import KeyedHasher, peer_text

if TYPE_CHECKING:
    from pacsradar.targets import ImportEntry, Scope

__all__ = [
    "FAMILIES",
    "PLAN_KEY",
    "PLAN_VERSION",
    "PlanError",
    "ScanPlan",
    "link_key_id",
    "load_imports",
]

#: Version of the plan's layout. A stored plan of a newer version is refused (its meaning may
#: have grown), an older one is migrated here when the layout changes.
PLAN_VERSION: Final = 1
#: Key of the JSON-encoded plan in a stored scan's options.
PLAN_KEY: Final = "plan"
#: Protocol families a scan may select (``--only``): the one table in :mod:`pacsradar.families`.
FAMILIES: Final = SCAN_FAMILIES


class PlanError(UsageError):
    """A plan that cannot be built or restored (unknown version, damaged, wrong link key)."""


def link_key_id(passphrase: str) -> str:
    """A one-way id of a ``--link-key``: equal keys give equal ids, the id does not give the key.

    Two hashes deep (the hasher's own derivation, then a second, labelled SHA-256), so the id is
    not a value the hasher ever uses and cannot be used to compute linkable patient hashes.
    """
    derived = hashlib.sha256(b"pacsradar-link-key:" + passphrase.encode()).digest()
    return hashlib.sha256(b"pacsradar-link-key-id:" + derived).hexdigest()[:16]


def _tokens(specs: Sequence[str]) -> tuple[str, ...]:
    """Target or exclusion specs as plain tokens: comma lists split, ``@file`` read now.

    Reading the files when the plan is made is what makes a resume exact: the plan holds what
    was scanned, not a path whose content may have changed since.
    """
    from pacsradar.targets.parse import _parse_token, _show, _spec_file_tokens

    out: dict[str, None] = {}
    for spec in specs:
        for raw in spec.split(","):
            token = raw.strip()
            if not token:
                continue
            if not token.startswith("@"):
                out.setdefault(token)
                continue
            for number, inner in _spec_file_tokens(token):
                if inner.startswith("@"):
                    raise TargetError(f"{_show(token[1:])} line {number}: nested @file is not allowed")
                try:
                    _parse_token(inner)  # checked here, so the error can name the line
                except TargetError as exc:
                    raise TargetError(f"{_show(token[1:])} line {number}: {exc}") from None
                out.setdefault(inner)
    return tuple(out)


#: File name endings that name one import format; the content must then be that format.
_IMPORT_SUFFIXES: Final = {".xml": "nmap XML (-oX)", ".gnmap": "nmap grepable"}


def load_imports(paths: Iterable[Path]) -> tuple[ImportEntry, ...]:
    """Parse ``--import`` files into entries; an error names the file and the format tried."""
    from pacsradar.targets import load_import

    entries: dict[ImportEntry, None] = {}
    for path in paths:
        shown = f"'{peer_text(str(path), 100)}'"
        suffix = path.suffix.lower()
        if suffix == ".gnmap":
            raise TargetError(f"{shown}: nmap grepable output is not supported; use nmap -oX")
        if suffix == ".xml":
            try:
                with path.open("rb") as fh:
                    head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
            except OSError as exc:
                raise TargetError(f"cannot read {shown}: {exc.strerror or type(exc).__name__}") from None
            if not head.startswith(b"<"):
                raise TargetError(f"{shown} is not {_IMPORT_SUFFIXES[suffix]}: it does not start with '<'")
        try:
            found = load_import(path)
        except TargetError as exc:
            message = str(exc)
            if shown not in message:
                message = f"{shown}: {message}"
            raise TargetError(f"cannot import {message}") from None
        entries.update(dict.fromkeys(found))
    return tuple(entries)


@dataclass(frozen=True)
class ScanPlan:
    """Everything that decides what a scan touches and how: plain, frozen, picklable data.

    ``targets`` and ``exclusions`` are tokens (``@file`` lists already read), ``imports`` the
    parsed entries of ``--import`` files. Ports: ``dicom_ports``/``web_ports``/``share_ports``
    are the per-family sets (empty when ``-p`` gave an exact list) and ``extra_ports`` the
    ports every selected family is tried on. Build one with :meth:`build`.
    """

    targets: tuple[str, ...] = ()
    exclusions: tuple[str, ...] = ()
    imports: tuple[tuple[str, int | None], ...] = ()
    dicom_ports: tuple[int, ...] = DEFAULT_DICOM_PORTS
    web_ports: tuple[int, ...] = DEFAULT_WEB_PORTS
    share_ports: tuple[int, ...] = DEFAULT_SHARE_PORTS
    extra_ports: tuple[int, ...] = ()
    families: tuple[str, ...] = FAMILIES
    limits: Limits = field(default_factory=Limits)
    max_records: int = 10_000
    intrusive: bool = False
    aet_wordlist: tuple[str, ...] = ()
    calling_aet: str = "PACSRADAR"
    allow_large: bool = False
    #: README "Honeypots": the score from which findings are marked; or mark nothing
    honeypot_threshold: int = 50
    count_honeypots: bool = False
    #: :func:`link_key_id` of the ``--link-key``, or ``None`` (a random key per run).
    link_key_id: str | None = None
    plan_version: int = PLAN_VERSION

    def __post_init__(self) -> None:
        if self.plan_version != PLAN_VERSION:
            raise PlanError(
                f"scan plan version {self.plan_version} is not supported by this pacsradar "
                f"(it reads version {PLAN_VERSION})"
            )
        unknown = set(self.families) - set(FAMILIES)
        if unknown or not self.families:
            raise PlanError(f"protocol families must be some of {', '.join(FAMILIES)}")

    # -- building --------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        targets: Sequence[str] = (),
        exclusions: Sequence[str] = (),
        *,
        imports: Iterable[ImportEntry] = (),
        options: ScanOptions | None = None,
        link_key: str | None = None,
        allow_large: bool = False,
        streamed: bool = False,
    ) -> ScanPlan:
        """A checked plan: every token parsed and the scope size checked now, not mid-scan.

        ``streamed``: more imports arrive while the scan runs (``--import -``,
        :mod:`pacsradar.pipe`), so a plan without targets or imports is not an error yet.

        Raises :class:`~pacsradar.errors.TargetError` (a :class:`UsageError`) naming the bad
        token, or :class:`~pacsradar.errors.ScopeTooLargeError`.
        """
        if isinstance(targets, str) or isinstance(exclusions, str):
            raise TypeError("targets and exclusions are sequences of strings, not a str")
        opts = options or ScanOptions()
        plan = cls(
            targets=_tokens(targets),
            exclusions=_tokens(exclusions),
            imports=tuple(dict.fromkeys((str(h), p) for h, p in imports)),
            dicom_ports=tuple(opts.dicom_ports),
            web_ports=tuple(opts.web_ports),
            share_ports=tuple(opts.share_ports),
            extra_ports=tuple(opts.extra_ports),
            families=tuple(f for f in FAMILIES if f in opts.only),
            limits=opts.limits,
            max_records=opts.max_records,
            intrusive=opts.intrusive,
            aet_wordlist=tuple(opts.aet_wordlist),
            calling_aet=opts.calling_aet,
            allow_large=allow_large,
            honeypot_threshold=opts.honeypot_threshold,
            count_honeypots=opts.count_honeypots,
            link_key_id=link_key_id(link_key) if link_key else None,
        )
        if not plan.targets and not plan.imports and not streamed:
            raise UsageError("name at least one target or --import file")
        plan.scope()  # parse and size-check now
        return plan

    def with_ports(self, ports: Sequence[int]) -> ScanPlan:
        """The same plan scanning exactly ``ports`` (every selected family tries each)."""
        return replace(self, dicom_ports=(), web_ports=(), share_ports=(), extra_ports=tuple(ports))

    # -- the scope ---------------------------------------------------------------------------

    def scope(self) -> Scope:
        """The parsed :class:`~pacsradar.targets.Scope`, built once per process and cached."""
        cached = self.__dict__.get("_scope")
        if cached is None:
            from pacsradar.targets import parse_scope

            cached = parse_scope(
                list(self.targets),
                list(self.exclusions),
                imported=self.imports,
                allow_large=self.allow_large,
                allow_empty=True,  # build() refuses an empty plan; a streamed one starts empty
            )
            object.__setattr__(self, "_scope", cached)
        return cached

    def ports(self) -> tuple[int, ...]:
        """Every port probed on every host, in probe order (pinned imports add their own)."""
        return self.options().ports()

    def is_excluded(self, host: str) -> bool:
        """Whether ``host`` (address or name) is excluded; call it on every address learnt later."""
        try:
            return self.scope().is_excluded(host)
        except TargetError:
            return True  # neither an address nor a name: never scanned

    def addresses(self, done: Container[tuple[str, int]] = frozenset()) -> Iterator[tuple[str, int]]:
        """Lazily yield the (host, port) pairs to scan, exclusions re-checked, ``done`` skipped."""
        scope = self.scope()
        # Without exclusions the re-check cannot exclude anything; with them it runs on every
        # endpoint (the interval arithmetic already removed them: this is the second lock).
        check = scope.is_excluded if scope.has_exclusions else None
        for host, port in scope.endpoints(self.ports()):
            canonical = _canonical(host)
            if (canonical, port) in done or (check is not None and check(canonical)):
                continue
            yield canonical, port

    def endpoints(self, done: Container[tuple[str, int]] = frozenset()) -> Iterator[Endpoint]:
        """:meth:`addresses` as :class:`Endpoint` records."""
        for host, port in self.addresses(done):
            yield Endpoint(host=host, port=port)

    def endpoint_count(self) -> int:
        """How many endpoints :meth:`endpoints` yields with nothing done (for progress)."""
        return self.scope().endpoint_count(self.ports())

    @property
    def hostnames(self) -> tuple[str, ...]:
        """Names in the scope: the session resolves each once and re-checks its addresses."""
        scope = self.scope()
        pinned = tuple(h for h, _ in scope.pinned if not _is_ip(h))
        return tuple(dict.fromkeys((*scope.hostnames, *pinned)))

    # -- options -------------------------------------------------------------------------------

    def options(self, link_key: str | None = None, *, hasher: KeyedHasher | None = None) -> ScanOptions:
        """The engine's :class:`ScanOptions` for this plan.

        ``link_key`` must be the key the plan was made with (checked against ``link_key_id``);
        without one a plan that used a key gets a random hasher only when ``hasher`` is given
        (a worker handed its session's hasher), so patient hashes never silently stop linking.
        """
        if hasher is None:
            if link_key is not None:
                if self.link_key_id is None or link_key_id(link_key) != self.link_key_id:
                    raise PlanError("the --link-key given is not the key this scan was started with")
                hasher = KeyedHasher.from_passphrase(link_key)
            else:
                hasher = KeyedHasher()
        return ScanOptions(
            limits=self.limits,
            only=frozenset(self.families),
            dicom_ports=self.dicom_ports,
            web_ports=self.web_ports,
            share_ports=self.share_ports,
            extra_ports=self.extra_ports,
            import_ports=frozenset(p for _, p in self.imports if p is not None),
            calling_aet=self.calling_aet,
            max_records=self.max_records,
            intrusive=self.intrusive,
            aet_wordlist=self.aet_wordlist,
            hasher=hasher,
            honeypot_threshold=self.honeypot_threshold,
            count_honeypots=self.count_honeypots,
        )

    # -- persistence ---------------------------------------------------------------------------

    def to_json(self) -> str:
        """The plan as compact JSON: what the store keeps with the scan (never a key)."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ScanPlan:
        """Rebuild a plan stored by :meth:`to_json`; anything else is a :class:`PlanError`."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError):
            raise PlanError("the stored scan plan is damaged (not JSON)") from None
        if not isinstance(data, dict):
            raise PlanError("the stored scan plan is damaged (not an object)")
        version = data.get("plan_version")
        if version != PLAN_VERSION:
            raise PlanError(
                f"the stored scan plan has version {peer_text(version, 20)}; this pacsradar "
                f"restores version {PLAN_VERSION} only"
            )
        try:
            return _plan_from_dict(data)
        except (TypeError, ValueError, KeyError) as exc:
            raise PlanError(f"the stored scan plan is damaged ({type(exc).__name__})") from None

    def __getstate__(self) -> dict[str, Any]:
        # The cached Scope is derived data: rebuilt on the other side, never shipped.
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)


def _plan_from_dict(data: dict[str, Any]) -> ScanPlan:
    known = {f.name for f in fields(ScanPlan)}
    unknown = set(data) - known
    if unknown:
        raise ValueError("unknown plan fields")

    def strings(key: str) -> tuple[str, ...]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TypeError(key)
        return tuple(value)

    def ints(key: str) -> tuple[int, ...]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(type(v) is int and 0 < v < 65536 for v in value):
            raise TypeError(key)
        return tuple(value)

    imports: list[tuple[str, int | None]] = []
    for item in data.get("imports", []):
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError("imports")
        if item[1] is not None and type(item[1]) is not int:
            raise TypeError("imports")
        imports.append((item[0], item[1]))
    limits_data = data.get("limits", {})
    if not isinstance(limits_data, dict) or set(limits_data) - {f.name for f in fields(Limits)}:
        raise TypeError("limits")
    limits = Limits(**{k: type(getattr(Limits(), k))(v) for k, v in limits_data.items()})
    key_id = data.get("link_key_id")
    if key_id is not None and not isinstance(key_id, str):
        raise TypeError("link_key_id")
    return ScanPlan(
        targets=strings("targets"),
        exclusions=strings("exclusions"),
        imports=tuple(imports),
        dicom_ports=ints("dicom_ports"),
        web_ports=ints("web_ports"),
        share_ports=ints("share_ports"),
        extra_ports=ints("extra_ports"),
        families=strings("families"),
        limits=limits,
        max_records=int(data["max_records"]),
        intrusive=bool(data["intrusive"]),
        aet_wordlist=strings("aet_wordlist"),
        calling_aet=str(data["calling_aet"]),
        allow_large=bool(data.get("allow_large", False)),
        honeypot_threshold=int(data.get("honeypot_threshold", 50)),
        count_honeypots=bool(data.get("count_honeypots", False)),
        link_key_id=key_id,
        plan_version=int(data["plan_version"]),
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def is_ip(host: str) -> bool:
    """Whether ``host`` is an IP address literal (brackets allowed)."""
    return _is_ip(host)


def canonical_host(host: str) -> str:
    """Canonical text of an IP literal; a name unchanged (:func:`_canonical`)."""
    return _canonical(host)


def _canonical(host: str) -> str:
    """Canonical text for an IP literal (so '127.000.0.1' and '::0:1' dedupe); names unchanged."""
    try:
        # Fast path, once per endpoint of a sweep: inet_pton takes only dotted-quad IPv4.
        return socket.inet_ntoa(socket.inet_pton(socket.AF_INET, host))
    except OSError:
        pass
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return host
