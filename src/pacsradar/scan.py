"""Library entry point for network scans: scope + options in, ScanReport out, observers fed."""

from __future__ import annotations

import importlib
import ipaddress
from collections.abc import Callable, Container, Iterable, Iterator, Sequence

from pacsradar.config import ScanOptions
from pacsradar.dicom.auditor import DicomAuditor
from pacsradar.engine import Auditor, Engine, Observer
from pacsradar.families import FAMILIES
from pacsradar.models import Endpoint, ScanReport

#: Optional auditors by ``--only`` name: module path and class name. Missing modules are skipped.
OPTIONAL_AUDITORS: dict[str, tuple[str, str]] = {
    f.name: f.auditor for f in FAMILIES if f.auditor is not None and f.optional
}


def default_auditors(options: ScanOptions) -> list[Auditor]:
    """DICOM first: an HTTP server it finds on a DICOM port is then handed to the web auditor."""
    auditors: list[Auditor] = [DicomAuditor()]
    for name, (module, cls) in OPTIONAL_AUDITORS.items():
        if name not in options.only:
            continue
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        factory: Callable[[], Auditor] = getattr(mod, cls)
        auditors.append(factory())
    return auditors


def normalise_host(host: str) -> str:
    """Canonical text for an IP literal (so '127.000.0.1' and '::0:1' dedupe); names unchanged."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return host


def endpoints_for(
    hosts: Iterable[str],
    ports: Sequence[int],
    *,
    explicit: Iterable[tuple[str, int]] = (),
    done: Container[tuple[str, int]] = frozenset(),
) -> Iterator[Endpoint]:
    """Lazily pair hosts with ports (plus explicit host:port pairs), skipping finished ones."""
    for host in hosts:
        for port in ports:
            if (host, port) not in done:
                yield Endpoint(host=normalise_host(host), port=port)
    for host, port in explicit:
        if (host, port) not in done:
            yield Endpoint(host=normalise_host(host), port=port)


async def run_scan(
    endpoints: Iterable[Endpoint],
    options: ScanOptions,
    observers: Sequence[Observer] = (),
    *,
    total: int | None = None,
    scope: Sequence[str] = (),
    scan_id: str | None = None,
    auditors: Sequence[Auditor] | None = None,
    engine_hook: Callable[[Engine], None] | None = None,
    excluded: Callable[[str], bool] | None = None,
) -> ScanReport:
    engine = Engine(
        options,
        auditors if auditors is not None else default_auditors(options),
        observers,
        scan_id=scan_id,
        excluded=excluded,
    )
    if engine_hook is not None:
        engine_hook(engine)
    return await engine.run(endpoints, total=total, scope=scope)
