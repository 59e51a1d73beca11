"""One scan, owned by one object: a frozen :class:`ScanPlan` and the :class:`ScanSession` that runs it.

Why it is built this way:

* **The plan is the scope.** Targets, exclusions, imported endpoints, ports, protocol families,
  limits, timeouts and check options are one frozen, versioned value. The store keeps it with
  the scan and ``--resume`` restores exactly that value, so a resumed scan can never widen the
  scope (issue 12 point 1). A plan that cannot be restored is refused with a clear error.
* **The plan is plain data.** It pickles and round-trips through JSON: no socket, store, logger
  or key in it, so it can be shipped to another process (a Dask worker) and expanded there.
  The link key is never part of it: only ``link_key_id``, a one-way id that lets a resume check
  that the user supplied the same key again.
* **Exclusions win everywhere.** :meth:`ScanPlan.endpoints` re-checks every endpoint against the
  exclusions, a hostname is resolved once by the session and every address it yields is checked
  again; a worker that only has the plan applies the same rules.
* **Only the session writes the store.** Workers get endpoints and return results; the session
  feeds them to its observers (store writer first, then progress, alerts, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Container, Iterable, Iterator, Sequence
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
from pacsradar.models import Endpoint, ScanReport
from pacsradar.phi import KeyedHasher, peer_text

if TYPE_CHECKING:
    from pacsradar.engine import Auditor, Engine, Observer
    from pacsradar.store import Store
    from pacsradar.targets import ImportEntry, Scope

__all__ = [
    "FAMILIES",
    "PLAN_KEY",
    "PLAN_VERSION",
    "PlanError",
    "Resolver",
    "ScanPlan",
    "ScanSession",
    "link_key_id",
    "load_imports",
    "system_resolver",
]

#: Version of the plan's layout. A stored plan of a newer version is refused (its meaning may
#: have grown), an older one is migrated here when the layout changes.
PLAN_VERSION: Final = 1
#: Key of the JSON-encoded plan in a stored scan's options.
PLAN_KEY: Final = "plan"
#: Protocol families a scan may select (``--only``).
FAMILIES: Final = ("dicom", "web", "share")

#: ``async resolver(name) -> addresses``; an empty list means the name did not resolve.
Resolver = Callable[[str], Awaitable[list[str]]]

# RFC 6761 §6.4: "invalid" and names under it never resolve; resolvers SHOULD answer negatively
# at once. Answering here keeps such names off the network entirely (and out of test DNS).
_NEVER_RESOLVES: Final = ("invalid",)


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
    from pacsradar.targets import MAX_TARGET_FILE_BYTES

    out: dict[str, None] = {}
    for spec in specs:
        for raw in spec.split(","):
            token = raw.strip()
            if not token:
                continue
            if not token.startswith("@"):
                out.setdefault(token)
                continue
            out.update(dict.fromkeys(_file_tokens(token[1:], MAX_TARGET_FILE_BYTES)))
    return tuple(out)


def _file_tokens(name: str, limit: int) -> Iterator[str]:
    """Tokens of a target list file (``@file``, ``-iL``): ``#`` comments, commas or blanks."""
    shown = f"'{peer_text(name, 100)}'"
    if not name:
        raise TargetError("'@' must be followed by a file name")
    path = Path(name)
    try:
        if path.stat().st_size > limit:
            raise TargetError(f"{shown} is larger than {limit:,} bytes")
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise TargetError(f"cannot read target list {shown}: {exc.strerror or type(exc).__name__}") from None
    if len(data) > limit:
        raise TargetError(f"{shown} is larger than {limit:,} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TargetError(f"target list {shown} is not UTF-8 text") from None
    for number, line in enumerate(text.splitlines(), start=1):
        for token in line.partition("#")[0].replace(",", " ").split():
            if token.startswith("@"):
                raise TargetError(f"{shown} line {number}: nested @file is not allowed")
            yield token


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
    ) -> ScanPlan:
        """A checked plan: every token parsed and the scope size checked now, not mid-scan.

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
            link_key_id=link_key_id(link_key) if link_key else None,
        )
        if not plan.targets and not plan.imports:
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

    def endpoints(self, done: Container[tuple[str, int]] = frozenset()) -> Iterator[Endpoint]:
        """Lazily yield the endpoints to scan, exclusions re-checked, ``done`` ones skipped."""
        scope = self.scope()
        for host, port in scope.endpoints(self.ports()):
            canonical = _canonical(host)
            if (canonical, port) in done or scope.is_excluded(canonical):
                continue
            yield Endpoint(host=canonical, port=port)

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
            calling_aet=self.calling_aet,
            max_records=self.max_records,
            intrusive=self.intrusive,
            aet_wordlist=self.aet_wordlist,
            hasher=hasher,
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
        link_key_id=key_id,
        plan_version=int(data["plan_version"]),
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _canonical(host: str) -> str:
    """Canonical text for an IP literal (so '127.000.0.1' and '::0:1' dedupe); names unchanged."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return host


async def system_resolver(name: str, *, within: float = 3.0) -> list[str]:
    """Addresses of ``name`` from the system resolver; ``[]`` when it does not resolve."""
    labels = name.lower().rstrip(".").split(".")
    if labels[-1] in _NEVER_RESOLVES:
        return []
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(name, None, type=socket.SOCK_STREAM), within)
    except (OSError, TimeoutError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _Resolved:
    """Endpoints with names replaced by their first address; unresolved names dropped."""

    def __init__(self, plan: ScanPlan, addresses: dict[str, str | None], done: Container[tuple[str, int]]):
        self.plan = plan
        self.addresses = addresses
        self.done = done

    def __iter__(self) -> Iterator[Endpoint]:
        for endpoint in self.plan.endpoints():
            if endpoint.host in self.addresses:
                address = self.addresses[endpoint.host]
                if address is None:
                    continue
                endpoint = endpoint.model_copy(update={"host": address})
            if (endpoint.host, endpoint.port) in self.done:
                continue
            yield endpoint


class ScanSession:
    """Runs one :class:`ScanPlan`: resolves names, expands endpoints, writes the store, reports.

    ``store``: when given, the session records the scan (plan included) as it streams, and is
    the only writer. ``observers`` get every result after the store (progress bars, alerts).
    ``resolver`` resolves hostnames (inject one in tests: no DNS). ``warnings`` collects what
    the user must hear about (names that did not resolve, names excluded after resolution).
    """

    def __init__(
        self,
        plan: ScanPlan,
        *,
        store: Store | None = None,
        observers: Sequence[Observer] = (),
        scan_id: str | None = None,
        done: frozenset[tuple[str, int]] = frozenset(),
        link_key: str | None = None,
        hasher: KeyedHasher | None = None,
        resolver: Resolver | None = None,
        auditors: Sequence[Auditor] | None = None,
        engine_hook: Callable[[Engine], None] | None = None,
        store_options: dict[str, Any] | None = None,
    ) -> None:
        self.plan = plan
        self.options = plan.options(link_key, hasher=hasher)
        self.store = store
        self.observers = tuple(observers)
        self.scan_id = scan_id
        self.done = done
        self.resolver = resolver
        self.auditors = auditors
        self.engine_hook = engine_hook
        self.store_options = dict(store_options or {})
        self.warnings: list[str] = []
        self.unresolved: list[str] = []
        self.total: int | None = None
        self._engine: Engine | None = None
        self._stop_requested = False

    # -- resume --------------------------------------------------------------------------------

    @classmethod
    def resume(
        cls,
        store: Store,
        scan_id: str,
        *,
        link_key: str | None = None,
        observers: Sequence[Observer] = (),
        resolver: Resolver | None = None,
        auditors: Sequence[Auditor] | None = None,
    ) -> ScanSession:
        """Reopen a stored scan with exactly its stored plan, skipping its finished endpoints.

        Refused (:class:`PlanError`) when the scan was stored without a plan (an older
        pacsradar, an import) or with one this version cannot restore, and when the scan used
        a ``--link-key`` that is not supplied again (its patient hashes would stop linking).
        """
        plan = stored_plan(store, scan_id)
        if plan.link_key_id is not None and link_key is None:
            raise PlanError(
                "this scan was started with --link-key; give the same key again "
                "(--link-key or $PACSRADAR_LINK_KEY) to resume it"
            )
        if plan.link_key_id is None and link_key is not None:
            raise PlanError("this scan was started without --link-key; resume it without one")
        done = frozenset((e.host, e.port) for e in store.resume(scan_id))
        return cls(
            plan,
            store=store,
            observers=observers,
            scan_id=scan_id,
            done=done,
            link_key=link_key,
            resolver=resolver,
            auditors=auditors,
        )

    # -- running -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the endpoints in flight, start no new one (the first Ctrl-C)."""
        self._stop_requested = True
        if self._engine is not None:
            self._engine.stop()

    async def resolve_names(self) -> dict[str, str | None]:
        """Resolve every name in the scope once: its address, or ``None`` (warned, skipped).

        A name any of whose addresses is excluded is skipped too: an IP exclusion wins over a
        hostname target (README "Safety").
        """
        names = self.plan.hostnames
        if not names:
            return {}
        timeout = self.plan.limits.connect_timeout
        resolver = self.resolver

        async def default(name: str) -> list[str]:
            return await system_resolver(name, within=timeout)

        resolve = resolver or default
        gate = asyncio.Semaphore(32)

        async def one(name: str) -> tuple[str, str | None]:
            async with gate:
                try:
                    found = await asyncio.wait_for(resolve(name), timeout + 1.0)
                except (OSError, TimeoutError):
                    found = []
            addresses = [_canonical(a) for a in found if _is_ip(a)]
            if not addresses:
                self.unresolved.append(name)
                self.warnings.append(f"{name}: name did not resolve; not scanned")
                return name, None
            if any(self.plan.is_excluded(a) for a in addresses):
                self.warnings.append(f"{name}: resolves to an excluded address; not scanned")
                return name, None
            return name, addresses[0]

        return dict(await asyncio.gather(*(one(n) for n in names)))

    def _store_observer(self) -> Observer | None:
        if self.store is None:
            return None
        from pacsradar.store import StoreObserver

        plan = self.plan
        options: dict[str, Any] = {
            "max_records": plan.max_records,
            "intrusive": plan.intrusive,
            "only": sorted(plan.families),
            **self.store_options,
            PLAN_KEY: plan.to_json(),
        }
        return StoreObserver(self.store, scope=plan.targets, options=options)

    async def run_async(self) -> ScanReport:
        """Resolve, expand and scan; the report covers this run (a resume: its second part)."""
        from pacsradar.engine import Engine
        from pacsradar.scan import default_auditors

        addresses = await self.resolve_names()
        endpoints = _Resolved(self.plan, addresses, self.done)
        dropped_names = {n for n, a in addresses.items() if a is None}
        if dropped_names and not any(True for _ in endpoints):
            raise UsageError("no target left to scan: " + "; ".join(self.warnings))
        scope = self.plan.scope()
        per_name = len(dropped_names & set(scope.hostnames)) * len(self.plan.ports())
        per_name += sum(1 for h, _ in scope.pinned if h in dropped_names)
        self.total = max(0, self.plan.endpoint_count() - per_name - len(self.done))
        observers = [o for o in (self._store_observer(),) if o is not None]
        observers.extend(self.observers)
        engine = Engine(
            self.options,
            self.auditors if self.auditors is not None else default_auditors(self.options),
            observers,
            scan_id=self.scan_id,
            excluded=self.plan.is_excluded,
        )
        self._engine = engine
        if self._stop_requested:
            engine.stop()
        if self.engine_hook is not None:
            self.engine_hook(engine)
        self.scan_id = engine.scan_id
        return await engine.run(endpoints, total=self.total, scope=self.plan.targets)

    def run(self, *, handle_sigint: bool = True) -> ScanReport:
        """Run to the end in a new event loop. The first Ctrl-C stops new work; results stay."""

        async def main() -> ScanReport:
            if handle_sigint and threading.current_thread() is threading.main_thread():
                loop = asyncio.get_running_loop()
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(signal.SIGINT, self.stop)
            return await self.run_async()

        return asyncio.run(main())


def stored_plan(store: Store, scan_id: str) -> ScanPlan:
    """The plan a stored scan ran with; :class:`PlanError` if it has none or it is unreadable."""
    text = store.load_report(scan_id).options.get(PLAN_KEY)
    if not isinstance(text, str):
        raise PlanError(
            "this scan was stored without its scan plan (an older pacsradar or an import), "
            "so it cannot be resumed exactly; start a new scan instead"
        )
    return ScanPlan.from_json(text)
