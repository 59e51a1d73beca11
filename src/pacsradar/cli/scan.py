"""`pacsradar scan` and `pacsradar demo`."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from pacsradar.cli import scanopts
from pacsradar.cli.common import (
    OPT_FAIL_ON,
    OPT_FORMAT,
    OPT_LINK_KEY,
    OPT_LOG_LEVEL,
    OPT_NO_PROGRESS,
    OPT_OUTPUT,
    ProgressObserver,
    emit,
    exit_code,
    setup_logging,
    stderr_console,
)
from pacsradar.cli.exitcodes import ExitCode
from pacsradar.cli.scanopts import scan_options
from pacsradar.config import ScanOptions
from pacsradar.engine import Engine, Observer
from pacsradar.errors import StoreError, UsageError
from pacsradar.models import Endpoint, ScanReport, Severity
from pacsradar.scan import normalise_host, run_scan
from pacsradar.targets import load_import, parse_scope

if TYPE_CHECKING:
    from pacsradar.store import Store

def _open_store(db: str | None) -> Store:
    from pacsradar.store import open_store

    return open_store(db)


def _store_observer(store: Store | None, scope: tuple[str, ...], options: ScanOptions) -> Observer | None:
    if store is None:
        return None
    from pacsradar.store import StoreObserver

    return StoreObserver(
        store,
        scope=scope,
        options={
            "max_records": options.max_records,
            "intrusive": options.intrusive,
            "only": sorted(options.only),
        },
    )


def execute(
    endpoints: list[Endpoint] | None,
    options: ScanOptions,
    *,
    scope_iter: object = None,
    total: int | None,
    scope_text: tuple[str, ...],
    observers: list[Observer],
    console: Console,
    progress: bool,
    scan_id: str | None = None,
    excluded: Callable[[str], bool] | None = None,
) -> ScanReport:
    """Run the engine with Ctrl-C handling: first SIGINT stops new work, partial results stay."""
    if progress:
        observers = [ProgressObserver(console), *observers]
    engines: list[Engine] = []

    async def main() -> ScanReport:
        loop = asyncio.get_running_loop()

        def hook(engine: Engine) -> None:
            engines.append(engine)
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGINT, engine.stop)

        return await run_scan(
            endpoints if endpoints is not None else scope_iter,  # type: ignore[arg-type]
            options,
            observers,
            total=total,
            scope=scope_text,
            engine_hook=hook,
            scan_id=scan_id,
            excluded=excluded,
        )

    return asyncio.run(main())


def register(app: typer.Typer) -> None:
    @app.command()
    def scan(
        targets: list[str] = typer.Argument(
            None, help="Addresses, CIDRs, ranges (127.0.0.1-40), hostnames, @file."
        ),
        exclude: list[str] = scanopts.OPT_EXCLUDE,
        import_file: list[Path] = typer.Option(
            [], "--import", help="nmap XML, masscan, Shodan JSON or host:port list."
        ),
        ports: str = scanopts.OPT_PORTS,
        default_ports: bool = scanopts.OPT_DEFAULT_PORTS,
        only: list[str] = scanopts.OPT_ONLY,
        allow_large_scope: bool = scanopts.OPT_ALLOW_LARGE,
        concurrency: int = scanopts.OPT_CONCURRENCY,
        per_host: int = scanopts.OPT_PER_HOST,
        rate: float = scanopts.OPT_RATE,
        connect_timeout: float = scanopts.OPT_CONNECT_TIMEOUT,
        read_timeout: float = scanopts.OPT_READ_TIMEOUT,
        assoc_timeout: float = scanopts.OPT_ASSOC_TIMEOUT,
        deadline: float = scanopts.OPT_DEADLINE,
        max_records: int = scanopts.OPT_MAX_RECORDS,
        intrusive: bool = scanopts.OPT_INTRUSIVE,
        aet_wordlist: Path = scanopts.OPT_AET_WORDLIST,
        calling_aet: str = scanopts.OPT_CALLING_AET,
        link_key: str = OPT_LINK_KEY,
        output_format: str = OPT_FORMAT,
        output: Path = OPT_OUTPUT,
        fail_on: Severity = OPT_FAIL_ON,
        db: str = typer.Option(
            None, "--db", envvar="PACSRADAR_DB", help="SQLAlchemy URL of the findings store."
        ),
        store: bool = typer.Option(
            True, "--store/--no-store", help="Store results in the findings database."
        ),
        resume: str = typer.Option(
            None, "--resume", help="Finish a stored scan, skipping its finished endpoints."
        ),
        log_level: str = OPT_LOG_LEVEL,
        no_progress: bool = OPT_NO_PROGRESS,
        workers: int | None = scanopts.OPT_WORKERS,
        scheduler: str | None = scanopts.OPT_SCHEDULER,
    ) -> None:
        """Audit DICOM, DICOMweb and PACS web services on the targets you are authorised to scan."""
        err = stderr_console()
        try:
            setup_logging(log_level)
            scanopts.check_cluster(workers, scheduler)
            options = scan_options(
                ports=ports,
                only=only,
                concurrency=concurrency,
                per_host=per_host,
                rate=rate,
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                assoc_timeout=assoc_timeout,
                deadline=deadline,
                max_records=max_records,
                intrusive=intrusive,
                aet_wordlist=aet_wordlist,
                calling_aet=calling_aet,
                link_key=link_key,
                default_ports=default_ports,
            )
            db_store = _open_store(db) if (store or resume) else None
            done: frozenset[tuple[str, int]] = frozenset()
            if resume:
                assert db_store is not None
                targets = targets or list(db_store.get_scan(resume).scope)
                done = frozenset((e.host, e.port) for e in db_store.resume(resume))
            imported = [entry for path in import_file for entry in load_import(path)]
            if not targets and not imported:
                raise UsageError("name at least one target or --import file")
            scope = parse_scope(targets or [], exclude, imported=imported, allow_large=allow_large_scope)
        except (UsageError, StoreError) as exc:
            err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
            raise typer.Exit(ExitCode.USAGE) from None
        port_list = options.ports()
        total = max(0, scope.endpoint_count(port_list) - len(done))
        endpoints = (
            Endpoint(host=normalise_host(h), port=p)
            for h, p in scope.endpoints(port_list)
            if (normalise_host(h), p) not in done
        )
        scope_text = tuple(targets or ())
        observers = [o for o in (_store_observer(db_store, scope_text, options),) if o is not None]
        try:
            if workers is not None or scheduler is not None:
                report = scanopts.cluster_scan(
                    scope,
                    options,
                    observers,
                    workers=workers,
                    scheduler=scheduler,
                    scope_text=scope_text,
                    scan_id=resume,
                    done=done,
                    console=err,
                    progress=not no_progress and err.is_terminal,
                )
            else:
                report = execute(
                    None,
                    options,
                    scope_iter=endpoints,
                    total=total,
                    scope_text=scope_text,
                    observers=observers,
                    console=err,
                    progress=not no_progress and err.is_terminal,
                    scan_id=resume,
                    excluded=scope.is_excluded,
                )
        except StoreError as exc:
            err.print(f"[bold red]store error:[/] {exc}", markup=True, highlight=False)
            raise typer.Exit(ExitCode.SCAN_ERROR) from None
        except scanopts.ClusterFailure as exc:
            err.print(f"[bold red]cluster error:[/] {exc}", markup=True, highlight=False)
            raise typer.Exit(ExitCode.SCAN_ERROR) from None
        emit(report, output_format, output, Console(highlight=False))
        raise typer.Exit(exit_code(report, fail_on))

    @app.command()
    def demo(
        output: Path = typer.Option(Path("pacsradar-demo-report.json"), "--output", help="JSON report path."),
        html: Path = typer.Option(Path("pacsradar-demo-report.html"), "--html", help="HTML report path."),
        db: str = typer.Option(
            None, "--db", envvar="PACSRADAR_DB", help="SQLAlchemy URL of the findings store."
        ),
        patients: int = typer.Option(25, help="Synthetic patients in the demo PACS."),
    ) -> None:
        """Start a deliberately exposed PACS (synthetic patients) on loopback, scan it, store it."""
        from pacsradar.lab.pacs import ExposedPacs
        from pacsradar.lab.synthetic import make_studies
        from pacsradar.report import ReportContext, render

        err = stderr_console()
        datasets = make_studies(patients, seed=7)
        db_store = _open_store(db)
        with ExposedPacs(datasets, host="127.0.0.1", port=0, allow_store=True) as pacs:
            err.print(
                f"demo PACS (pynetdicom, {pacs.summary.patients} synthetic patients, "
                f"{pacs.summary.studies} studies, {pacs.summary.instances} images) "
                f"on 127.0.0.1:{pacs.port}"
            )
            options = ScanOptions(only=frozenset({"dicom"}), dicom_ports=(pacs.port,), web_ports=())
            scope_text = (f"127.0.0.1:{pacs.port}",)
            observers = [o for o in (_store_observer(db_store, scope_text, options),) if o is not None]
            report = execute(
                [Endpoint(host="127.0.0.1", port=pacs.port)],
                options,
                total=1,
                scope_text=scope_text,
                observers=observers,
                console=err,
                progress=False,
            )
        emit(report, "table", None, Console(highlight=False))
        output.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
        html.write_text(render("html", ReportContext.from_store(db_store, report.scan_id)), encoding="utf-8")
        from sqlalchemy.engine import make_url

        err.print(f"stored in {make_url(db_store.url).render_as_string(hide_password=True)}")
        err.print(f"JSON report: {output}")
        err.print(f"HTML report: {html}")
        raise typer.Exit(ExitCode.OK)


__all__ = ["register"]
