"""`pacsradar scan` and `pacsradar demo`: parse, build a ScanPlan, run a ScanSession, render."""

from __future__ import annotations

import shlex
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.text import Text

from pacsradar.cli import scanopts
from pacsradar.cli.common import (
    OPT_ALLOW_INCOMPLETE,
    OPT_FAIL_ON,
    OPT_FORMAT,
    OPT_LINK_KEY,
    OPT_LOG_LEVEL,
    OPT_NO_PROGRESS,
    OPT_OUTPUT,
    OutputTarget,
    ProgressObserver,
    emit,
    exit_code,
    exit_interrupted,
    output_target,
    print_error,
    program,
    run_interruptible,
    setup_logging,
    stderr_console,
)
from pacsradar.cli.exitcodes import ExitCode
from pacsradar.cli.scanopts import scan_options
from pacsradar.config import ScanOptions
from pacsradar.errors import PacsradarError, StoreError, UsageError
from pacsradar.models import ScanReport, Severity
from pacsradar.render import to_json
from pacsradar.session import ScanPlan, ScanSession, load_imports

if TYPE_CHECKING:
    from pacsradar.store import Store
    from pacsradar.store.plain import ScanWriter
    from pacsradar.store.views import AcceptedRisk

#: Options that shape what a scan touches: with --resume they come from the stored plan, and
#: giving one as well is refused (the stored plan is restored exactly, never widened).
PLAN_PARAMETERS: tuple[str, ...] = (
    "targets",
    "input_list",
    "exclude",
    "import_file",
    "ports",
    "extra_ports",
    "default_ports",
    "only",
    "allow_large_scope",
    "concurrency",
    "per_host",
    "rate",
    "gate",
    "connect_timeout",
    "read_timeout",
    "assoc_timeout",
    "deadline",
    "max_records",
    "intrusive",
    "aet_wordlist",
    "calling_aet",
    "honeypot_threshold",
    "count_honeypots",
)


def _open_store(db: str | None, *, create: bool = True) -> Store:
    from pacsradar.cli.dbopen import open_db

    return open_db(db, create=create)


def _open_writer(db: str | None) -> ScanWriter:
    from pacsradar.cli.dbopen import open_writer

    return open_writer(db)


def _error(err: Console, exc: PacsradarError | str) -> None:
    err.print(Text(f"error: {exc}", style="bold red"), highlight=False)


def accepted_risks(store: ScanWriter | None) -> list[AcceptedRisk]:
    """The accepted risks in force now (none without a store)."""
    if store is None:
        return []
    return store.accepted_risks(active_at=datetime.now(UTC))


def accepted_map(risks: Sequence[AcceptedRisk], report: ScanReport) -> dict[str, str]:
    """Dedupe key -> expiry date of the accepted risk covering each finding of ``report``."""
    if not risks or not report.findings:
        return {}
    from pacsradar.store import accepted_for

    now = datetime.now(UTC)
    known = list(risks)
    out: dict[str, str] = {}
    for f in report.findings:
        risk = accepted_for(f, known, now)
        if risk is not None:
            out[f.dedupe_key] = f"{risk.expires_at:%Y-%m-%d}"
    return out


#: scan ids the user stopped with Ctrl-C in this process (their exit is :func:`exit_interrupted`)
INTERRUPTED_BY_USER: set[str] = set()
#: scan ids whose store (or another observer) failed: the report is still written, exit 3
OBSERVER_FAILED: set[str] = set()


def run_session(
    session: ScanSession,
    *,
    console: Console,
    progress: bool,
) -> ScanReport:
    """Run a session with a progress bar on a terminal; store errors and usage errors propagate.

    Ctrl-C (:func:`run_interruptible`): the first cancels the endpoints in flight and keeps the
    finished ones, the second exits at once. An observer that failed (the store) is printed;
    the scan went on without it and :func:`finish` exits 3.
    """
    if progress:
        session.observers = (ProgressObserver(console), *session.observers)
    report, interrupted = run_interruptible(session.run_async, console, session.interrupt)
    note_failed_observers(session, report, console)
    if interrupted:
        INTERRUPTED_BY_USER.add(report.scan_id)
    return report


def note_failed_observers(session: ScanSession, report: ScanReport, console: Console) -> None:
    """Name every observer (the store...) that failed and was dropped; the exit code becomes 3."""
    for failed in session.failed_observers:
        print_error(console, "error", f"{failed}: later results were not passed to it")
        OBSERVER_FAILED.add(report.scan_id)


def finish(
    report: ScanReport,
    session: ScanSession,
    target: OutputTarget,
    *,
    fail_on: Severity | None,
    allow_incomplete: bool,
    count_accepted: bool,
    resume: str | None = None,
) -> ExitCode:
    """Render the report, print warnings, pick the exit code; after a Ctrl-C, ``resume`` (the
    command that finishes the scan) is the last line on stderr."""
    risks = accepted_risks(session.store)
    accepted = accepted_map(risks, report)
    emit(report, target, Console(highlight=False), accepted=accepted, risks=risks, warnings=session.warnings)
    if report.scan_id in INTERRUPTED_BY_USER:
        if resume:
            stderr_console().print(Text(f"interrupted; finish it with: {resume}"), highlight=False)
        else:
            stderr_console().print(
                Text("interrupted; --no-store kept no record of it, so it cannot be resumed"),
                highlight=False,
            )
        exit_interrupted()
    if report.scan_id in OBSERVER_FAILED:
        return ExitCode.SCAN_ERROR
    return exit_code(
        report,
        fail_on,
        accepted={} if count_accepted else accepted,
        allow_incomplete=allow_incomplete,
        incomplete=None if not session.unresolved else True,
    )


def resume_command(scan_id: str, *, db: str | None, link_key_flag: bool, stored: bool) -> str | None:
    """The exact command that finishes an interrupted scan, or None when nothing was stored.

    ``--db`` is repeated when one was given; a ``--link-key`` given on the command line is
    asked for again by name, never printed (a key from ``$PACSRADAR_LINK_KEY`` is read again).
    """
    if not stored:
        return None
    parts = [program(), "scan", "--resume", shlex.quote(scan_id)]
    if db:
        parts += ["--db", shlex.quote(db)]
    if link_key_flag:
        parts += ["--link-key", "<the same key>"]
    return " ".join(parts)


def register(app: typer.Typer) -> None:
    @app.command()
    def scan(
        ctx: typer.Context,
        targets: list[str] = typer.Argument(
            None, help="Addresses, CIDRs, ranges (127.0.0.1-40), hostnames, @file."
        ),
        input_list: list[Path] = scanopts.OPT_INPUT_LIST,
        exclude: list[str] = scanopts.OPT_EXCLUDE,
        import_file: list[Path] = typer.Option(
            [],
            "--import",
            help="nmap XML (-oX), masscan JSON/list, Shodan JSON or host:port list; '-' reads "
            "masscan (-oL/-oJ/-oD) or zmap (CSV) output from a pipe, auditing as lines arrive.",
        ),
        ports: str = scanopts.OPT_PORTS,
        extra_ports: str = scanopts.OPT_EXTRA_PORTS,
        default_ports: bool = scanopts.OPT_DEFAULT_PORTS,
        only: list[str] = scanopts.OPT_ONLY,
        allow_large_scope: bool = scanopts.OPT_ALLOW_LARGE,
        concurrency: int = scanopts.OPT_CONCURRENCY,
        per_host: int = scanopts.OPT_PER_HOST,
        rate: float = scanopts.OPT_RATE,
        gate: str = scanopts.OPT_GATE,
        connect_timeout: float = scanopts.OPT_CONNECT_TIMEOUT,
        read_timeout: float = scanopts.OPT_READ_TIMEOUT,
        assoc_timeout: float = scanopts.OPT_ASSOC_TIMEOUT,
        deadline: float = scanopts.OPT_DEADLINE,
        max_records: int = scanopts.OPT_MAX_RECORDS,
        intrusive: bool = scanopts.OPT_INTRUSIVE,
        aet_wordlist: Path = scanopts.OPT_AET_WORDLIST,
        calling_aet: str = scanopts.OPT_CALLING_AET,
        honeypot_threshold: int = scanopts.OPT_HONEYPOT_THRESHOLD,
        count_honeypots: bool = scanopts.OPT_COUNT_HONEYPOTS,
        link_key: str = OPT_LINK_KEY,
        output_format: str = OPT_FORMAT,
        output: Path = OPT_OUTPUT,
        fail_on: Severity = OPT_FAIL_ON,
        allow_incomplete: bool = OPT_ALLOW_INCOMPLETE,
        count_accepted: bool = typer.Option(
            False, "--count-accepted", help="Let accepted risks count for --fail-on too."
        ),
        db: str = typer.Option(
            None, "--db", envvar="PACSRADAR_DB", help="SQLAlchemy URL of the findings store."
        ),
        store: bool = typer.Option(
            True, "--store/--no-store", help="Store results in the findings database."
        ),
        resume: str = typer.Option(
            None,
            "--resume",
            help="Finish a stored scan with exactly its stored plan (targets, exclusions, ports, "
            "limits), skipping its finished endpoints.",
        ),
        log_level: str = OPT_LOG_LEVEL,
        no_progress: bool = OPT_NO_PROGRESS,
        workers: int | None = scanopts.OPT_WORKERS,
        scheduler: str | None = scanopts.OPT_SCHEDULER,
    ) -> None:
        """Audit DICOM, DICOMweb and PACS web services on the targets you are authorised to scan.

        Exit codes: 0 done; 1 a finding at --fail-on; 2 usage error; 3 scan or store error;
        4 with --fail-on, something could not be tested; 130 interrupted.
        """
        err = stderr_console()
        try:
            setup_logging(log_level)
            scanopts.check_cluster(workers, scheduler)
            target = output_target(output_format, output)
            if resume:
                given = [
                    "--" + name.replace("_", "-")
                    for name in PLAN_PARAMETERS
                    if getattr(ctx.get_parameter_source(name), "name", "DEFAULT") != "DEFAULT"
                ]
                if given:
                    raise UsageError(
                        "--resume restores the stored plan exactly; do not give targets or scan "
                        f"options with it ({', '.join(sorted(given))})"
                    )
                db_store = _open_store(db, create=False)
                from pacsradar.cli.dbopen import resolve_scan

                session = ScanSession.resume(db_store, resolve_scan(db_store, resume), link_key=link_key)
            else:
                options = scan_options(
                    ports=ports,
                    extra_ports=extra_ports,
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
                    honeypot_threshold=honeypot_threshold,
                    count_honeypots=count_honeypots,
                    gate=gate,
                    remote=scheduler is not None,
                )
                stdin = scanopts.StdinUse(input_list, import_file, cluster=workers or scheduler)
                specs = [*(targets or ()), *(f"@{p}" for p in stdin.lists), *stdin.read_targets()]
                plan = ScanPlan.build(
                    specs,
                    exclude,
                    imports=load_imports(stdin.imports),
                    options=options,
                    link_key=link_key,
                    allow_large=allow_large_scope,
                    streamed=stdin.streamed,
                )
                session = ScanSession(
                    plan,
                    store=_open_writer(db) if store else None,
                    link_key=link_key,
                    stream=stdin.stream(),
                )
        except (UsageError, StoreError) as exc:
            _error(err, exc)
            raise typer.Exit(ExitCode.USAGE) from None
        try:
            if workers is not None or scheduler is not None:
                report = scanopts.cluster_scan(
                    session,
                    workers=workers,
                    scheduler=scheduler,
                    console=err,
                    progress=not no_progress and err.is_terminal,
                )
                note_failed_observers(session, report, err)
            else:
                report = run_session(session, console=err, progress=not no_progress and err.is_terminal)
            code = finish(
                report,
                session,
                target,
                fail_on=fail_on,
                allow_incomplete=allow_incomplete,
                count_accepted=count_accepted,
                resume=resume_command(
                    session.scan_id or report.scan_id,
                    db=db,
                    link_key_flag=bool(link_key)
                    and getattr(ctx.get_parameter_source("link_key"), "name", "") == "COMMANDLINE",
                    stored=session.store is not None,
                ),
            )
        except UsageError as exc:
            _error(err, exc)
            raise typer.Exit(ExitCode.USAGE) from None
        except StoreError as exc:
            err.print(Text(f"store error: {exc}", style="bold red"), highlight=False)
            raise typer.Exit(ExitCode.SCAN_ERROR) from None
        except scanopts.ClusterFailure as exc:
            err.print(Text(f"cluster error: {exc}", style="bold red"), highlight=False)
            raise typer.Exit(ExitCode.SCAN_ERROR) from None
        raise typer.Exit(code)

    @app.command()
    def demo(
        output: Path = typer.Option(
            None, "--output", "-o", help="JSON report path (default: in the demo's own directory)."
        ),
        html: Path = typer.Option(
            None, "--html", help="HTML report path (default: in the demo's own directory)."
        ),
        db: str = typer.Option(
            None,
            "--db",
            help="Store the demo here instead (default: a throwaway store of its own, never "
            "your findings store).",
        ),
        patients: int = typer.Option(25, help="Synthetic patients in the demo PACS."),
    ) -> None:
        """Start a deliberately exposed PACS (synthetic patients) on loopback, scan it, report it.

        The demo keeps its results out of your findings store: it writes a store of its own in
        a new directory and prints how to open it (report, serve with --db).
        """
        from pacsradar.lab.pacs import ExposedPacs
        from pacsradar.lab.synthetic import make_studies
        from pacsradar.report import ReportContext, render

        err = stderr_console()
        try:
            if patients < 1:
                raise UsageError("--patients must be at least 1")
            workdir = Path(tempfile.mkdtemp(prefix="pacsradar-demo-"))
            json_path = output or workdir / "pacsradar-demo-report.json"
            html_path = html or workdir / "pacsradar-demo-report.html"
            for path in (json_path, html_path):
                output_target("json", path)  # writable? checked before the demo starts
            db_url = db or f"sqlite:///{workdir / 'demo.db'}"
            db_store = _open_store(db_url)
        except (UsageError, StoreError) as exc:
            _error(err, exc)
            raise typer.Exit(ExitCode.USAGE) from None
        datasets = make_studies(patients, seed=7)
        with ExposedPacs(datasets, host="127.0.0.1", port=0, allow_store=True) as pacs:
            err.print(
                f"demo PACS (pynetdicom, {pacs.summary.patients} synthetic patients, "
                f"{pacs.summary.studies} studies, {pacs.summary.instances} images) "
                f"on 127.0.0.1:{pacs.port}"
            )
            options = ScanOptions(only=frozenset({"dicom"}), dicom_ports=(pacs.port,), web_ports=())
            plan = ScanPlan.build(["127.0.0.1"], options=options).with_ports((pacs.port,))
            session = ScanSession(plan, store=db_store, store_options={"demo": True})
            report = session.run()
        emit(report, OutputTarget("table", None), Console(highlight=False))
        from pacsradar.cli.common import write_private

        write_private(json_path, to_json(report) + "\n")
        write_private(html_path, render("html", ReportContext.from_store(db_store, report.scan_id)))
        shown = db_store.display_url
        err.print(Text(f"demo store (throwaway, not your findings store): {shown}"), soft_wrap=True)
        err.print(Text(f"JSON report: {json_path}"), soft_wrap=True)
        err.print(Text(f"HTML report: {html_path}"), soft_wrap=True)
        again = program()
        err.print(Text(f"open it again: {again} report {report.scan_id} --db {shown}"), soft_wrap=True)
        err.print(Text(f"           or: {again} serve --db {shown}"), soft_wrap=True)
        raise typer.Exit(ExitCode.OK)


__all__ = [
    "PLAN_PARAMETERS",
    "accepted_map",
    "accepted_risks",
    "finish",
    "note_failed_observers",
    "register",
    "run_session",
]
