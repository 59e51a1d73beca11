"""``pacsradar scans``, ``diff``, ``monitor`` and ``risk``: the findings store from the shell."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.text import Text

from pacsradar.cli import scanopts
from pacsradar.cli.common import OPT_LINK_KEY, stderr_console
from pacsradar.cli.dbopen import DB_HELP, fail, open_db, open_writer, resolve_scan
from pacsradar.cli.exitcodes import ExitCode
from pacsradar.cli.listing import print_listing
from pacsradar.errors import PacsradarError, UsageError
from pacsradar.models import Severity
from pacsradar.phi import peer_text
from pacsradar.render import plural
from pacsradar.report.safe import safe_json

if TYPE_CHECKING:
    from pacsradar.alerts import AlertSink
    from pacsradar.monitor import Cycle

ENV_WEBHOOK_SECRET = "PACSRADAR_WEBHOOK_SECRET"  # noqa: S105 - a variable name
ENV_SMTP_PASSWORD = "PACSRADAR_SMTP_PASSWORD"  # noqa: S105 - a variable name


def parse_expiry(text: str, now: datetime | None = None) -> datetime:
    """``2026-12-31``, an ISO datetime, or a duration from now (``90d``, ``12w``, ``6h``)."""
    now = now or datetime.now(UTC)
    m = re.fullmatch(r"(\d+)\s*([hdw])", text.strip().lower())
    if m:
        hours = {"h": 1, "d": 24, "w": 168}[m.group(2)] * int(m.group(1))
        return now + timedelta(hours=hours)
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError("expiry must be a date (2026-12-31), an ISO time, or 90d/12w/6h") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed <= now:
        raise UsageError("the expiry is in the past")
    return parsed


def known_check_id(check_id: str) -> str:
    """``check_id`` if the registry knows it (or ``*``); a typo is a usage error, not a no-op."""
    from pacsradar.registry import all_specs

    wanted = check_id.strip()
    if wanted == "*":
        return wanted
    known = all_specs()
    if wanted.upper() in known:
        return wanted.upper()
    close = sorted(k for k in known if k.split("-")[0] == wanted.upper().split("-")[0])
    hint = f"; {wanted.upper().split('-')[0]} checks are {', '.join(close)}" if close else ""
    raise UsageError(f"unknown check id '{peer_text(wanted, 60)}' (see `pacsradar checks`{hint})")


def _sev(value: str | None) -> Severity | None:
    if value is None:
        return None
    try:
        return Severity(value.lower())
    except ValueError:
        raise UsageError(f"severity must be one of {', '.join(s.value for s in Severity)}") from None


def register(app: typer.Typer) -> None:
    @app.command()
    def scans(
        db: str | None = typer.Option(None, "--db", envvar="PACSRADAR_DB", help=DB_HELP),
        limit: int = typer.Option(50, "--limit", min=1, help="Show at most N scans."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    ) -> None:
        """List stored scans, newest first."""
        try:
            with open_db(db) as store:
                found = store.list_scans(limit=limit)
        except PacsradarError as exc:
            raise fail(exc) from None
        if as_json:
            typer.echo(safe_json([s.model_dump(mode="json") for s in found]))
            return
        out = Console(highlight=False)
        columns = (
            "scan", "started (UTC)", "status", "endpoints", "findings",
            "distinct patients", "per-service patients", "scope",
        )  # fmt: skip
        rows = [
            (
                s.scan_id,
                s.started_at.strftime("%Y-%m-%d %H:%M"),
                s.status.value,
                f"{s.stats.endpoints_done}/{s.stats.endpoints_total}",
                f"{s.findings.critical}C {s.findings.high}H {s.findings.medium}M {s.findings.low}L "
                f"{s.findings.info}I",
                ("≥ " if s.exposure.lower_bound else "") + f"{s.exposure.patients:,}",
                f"{s.exposure.service_patients:,} ({plural(s.exposure.services, 'service')})",
                ", ".join(s.scope),
            )
            for s in found
        ]
        # The id is what `report`, `diff` and `--resume` take: whole at any width, piped too.
        print_listing(
            out,
            columns,
            [(*row[:-1], row[-1][:200] if out.is_terminal else row[-1]) for row in rows],
            keep=("scan",),
            drop_order=("scope", "started (UTC)", "per-service patients", "endpoints"),
        )

    @app.command()
    def diff(
        base: str | None = typer.Argument(None, help="Base scan (or the head scan if alone)."),
        head: str | None = typer.Argument(None, help="Head scan (default: newest)."),
        db: str | None = typer.Option(None, "--db", envvar="PACSRADAR_DB", help=DB_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
        fail_on: str | None = typer.Option(
            None, "--fail-on", help="Exit 1 if a new or regressed finding is at least this severe."
        ),
    ) -> None:
        """New, resolved, changed and regressed findings between two scans.

        With no scan named, the newest scan is compared with the previous scan of its scope.
        """
        try:
            threshold = _sev(fail_on)
            with open_db(db) as store:
                # a unique prefix names a scan, as in `report` and `--resume`
                base = resolve_scan(store, base, strict=False) if base else base
                head = resolve_scan(store, head, strict=False) if head else head
                result = store.diff(base, head)
        except PacsradarError as exc:
            raise fail(exc) from None
        if as_json:
            typer.echo(safe_json(result.model_dump(mode="json")))
        else:
            out = Console(highlight=False)
            summary = (
                f"{result.base or 'nothing'} -> {result.head}: {len(result.new)} new, "
                f"{len(result.regressed)} regressed, {len(result.changed)} changed, "
                f"{len(result.resolved)} resolved, {len(result.not_retested)} not re-tested, "
                f"{result.unchanged} unchanged"
            )
            # Piped, the summary is a # comment: every other line is a change (grep, cut).
            out.print(Text(summary if out.is_terminal else f"# {summary}"), soft_wrap=True)
            changes = [
                (c.kind.value, c.finding.severity.value, c.finding.check_id, c.finding.endpoint.label,
                 c.finding.title)
                for c in result.all_changes()
            ]  # fmt: skip
            if changes:
                print_listing(
                    out,
                    ("change", "severity", "check", "endpoint", "title"),
                    changes,
                    keep=("check", "endpoint"),
                    drop_order=("title",),
                )
        if threshold is not None and any(
            c.finding.severity.rank >= threshold.rank for c in result.new + result.regressed
        ):
            raise typer.Exit(ExitCode.FINDINGS)

    @app.command()
    def monitor(
        targets: list[str] = typer.Argument(..., help="What to scan each cycle (as for scan)."),
        every: str | None = typer.Option(None, "--every", help="Interval: 6h, 90m, 1h30m, 1d."),
        once: bool = typer.Option(False, "--once", help="One cycle, then exit (cron, timers)."),
        db: str | None = typer.Option(None, "--db", envvar="PACSRADAR_DB", help=DB_HELP),
        exclude: list[str] = scanopts.OPT_EXCLUDE,
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
        webhook: str | None = typer.Option(None, "--webhook", help="POST alerts to this URL."),
        webhook_secret_file: Path | None = typer.Option(
            None,
            "--webhook-secret-file",
            help=f"HMAC key for X-Pacsradar-Signature (or ${ENV_WEBHOOK_SECRET}).",
        ),
        smtp: str | None = typer.Option(None, "--smtp", help="SMTP relay HOST[:PORT] for email alerts."),
        mail_from: str = typer.Option("pacsradar@localhost", "--mail-from", help="Sender."),
        mail_to: list[str] = typer.Option([], "--mail-to", help="Recipient (repeatable)."),
        smtp_starttls: bool = typer.Option(False, "--smtp-starttls", help="Use STARTTLS."),
        smtp_ssl: bool = typer.Option(False, "--smtp-ssl", help="Use implicit TLS."),
        smtp_user: str | None = typer.Option(
            None, "--smtp-user", help=f"SMTP login (password in ${ENV_SMTP_PASSWORD})."
        ),
        syslog: str | None = typer.Option(None, "--syslog", help="/dev/log or HOST:PORT."),
        syslog_tcp: bool = typer.Option(False, "--syslog-tcp", help="Syslog over TCP."),
        syslog_facility: str = typer.Option("local0", "--syslog-facility"),
        min_severity: str = typer.Option("low", "--min-severity", help="Alert threshold."),
        alert_on_first: bool = typer.Option(
            True, "--alert-on-first/--no-alert-on-first", help="Alert on the first scan too."
        ),
        workers: int | None = scanopts.OPT_WORKERS,
        scheduler: str | None = scanopts.OPT_SCHEDULER,
    ) -> None:
        """Scan on a schedule, store each scan, diff it against the last, alert on changes.

        Takes the same scope, exclusions, limits and --link-key as `scan` (a fixed link key
        keeps patient hashes comparable from one cycle to the next).
        """
        from pacsradar.cli.scanopts import scan_options
        from pacsradar.monitor import Monitor, parse_interval

        err = stderr_console(highlight=False)
        try:
            if once == (every is not None):
                raise UsageError("give exactly one of --every INTERVAL or --once")
            interval = parse_interval(every) if every else 0.0
            sinks = _sinks(
                webhook,
                webhook_secret_file,
                smtp,
                mail_from,
                mail_to,
                smtp_starttls,
                smtp_ssl,
                smtp_user,
                syslog,
                syslog_tcp,
                syslog_facility,
            )
            threshold = _sev(min_severity) or Severity.LOW
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
            store = open_db(db, create=True)
            on_cluster = scanopts.MonitorClusterOption(
                targets, workers, scheduler, exclude, allow_large_scope
            )
        except PacsradarError as exc:
            raise fail(exc) from None
        with store, on_cluster:
            try:
                mon = Monitor(
                    store,
                    targets,
                    options=options,
                    exclude=exclude,
                    allow_large=allow_large_scope,
                    sinks=sinks,
                    min_severity=threshold,
                    alert_on_first=alert_on_first,
                    scan=on_cluster.scan,
                )
            except PacsradarError as exc:
                raise fail(exc) from None

            def report_cycle(cycle: Cycle) -> None:
                d = cycle.diff
                err.print(
                    Text(
                        f"scan {cycle.report.scan_id}: {len(d.new)} new, {len(d.regressed)} "
                        f"regressed, {len(d.changed)} changed, {len(d.resolved)} resolved; "
                        + alert_status(cycle, configured=bool(sinks))
                    )
                )

            if once:
                try:
                    cycle = mon.run_once()
                except PacsradarError as exc:
                    raise fail(exc) from None
                report_cycle(cycle)
                if any(not x.ok for x in cycle.deliveries):
                    raise typer.Exit(ExitCode.SCAN_ERROR)
                return
            try:
                mon.run_forever(interval, on_cycle=report_cycle)
            except KeyboardInterrupt:
                raise typer.Exit(ExitCode.INTERRUPTED) from None

    risk = typer.Typer(help="Accepted risks: mute a check on an asset until an expiry date.")
    app.add_typer(risk, name="risk")

    @risk.command("add")
    def risk_add(
        check_id: str = typer.Argument(..., help="Check id, e.g. DICOM-PLAINTEXT (or * for every check)."),
        asset: str = typer.Argument(..., help="Host, host:port, or * for every asset."),
        reason: str = typer.Option(..., "--reason", help="Why the risk is accepted."),
        expires: str = typer.Option(..., "--expires", help="2026-12-31, ISO time, or 90d."),
        db: str | None = typer.Option(None, "--db", envvar="PACSRADAR_DB", help=DB_HELP),
    ) -> None:
        """Accept a risk until it expires: muted in alerts, marked in reports."""
        try:
            check_id = known_check_id(check_id)
            when = parse_expiry(expires)
            with open_db(db, create=True) as store:
                r = store.add_accepted_risk(check_id, asset, reason, when)
        except PacsradarError as exc:
            raise fail(exc) from None
        typer.echo(f"accepted risk {r.id}: {r.check_id} on {r.asset} until {r.expires_at:%Y-%m-%d}")

    @risk.command("list")
    def risk_list(
        db: str | None = typer.Option(None, "--db", envvar="PACSRADAR_DB", help=DB_HELP),
        all_: bool = typer.Option(False, "--all", help="Include expired ones."),
    ) -> None:
        """List accepted risks."""
        try:
            with open_db(db) as store:
                risks = store.accepted_risks(active_at=None if all_ else datetime.now(UTC))
        except PacsradarError as exc:
            raise fail(exc) from None
        print_listing(
            Console(highlight=False),
            ("id", "check", "asset", "expires", "reason"),
            [(str(r.id), r.check_id, r.asset, f"{r.expires_at:%Y-%m-%d}", r.reason) for r in risks],
            keep=("id", "check"),
        )

    @risk.command("remove")
    def risk_remove(
        risk_id: int = typer.Argument(..., help="Id shown by `pacsradar risk list`."),
        db: str | None = typer.Option(None, "--db", envvar="PACSRADAR_DB", help=DB_HELP),
    ) -> None:
        """Remove an accepted risk."""
        try:
            with open_db(db) as store:
                store.remove_accepted_risk(risk_id)
        except PacsradarError as exc:
            raise fail(exc) from None
        typer.echo(f"removed accepted risk {risk_id}")


def alert_status(cycle: Cycle, *, configured: bool) -> str:
    """What happened to this cycle's alert, in words (never "sent" when nothing was sent)."""
    if not configured:
        return "no alert sink configured (--webhook, --smtp, --syslog)"
    if cycle.alert is None:
        return "nothing to alert on"
    sent = [x.sink for x in cycle.deliveries if x.ok]
    failed = [f"{x.sink} failed: {x.error or 'unknown error'}" for x in cycle.deliveries if not x.ok]
    parts = [f"alert sent to {', '.join(sent)}"] if sent else []
    return "; ".join(parts + failed)


def _sinks(
    webhook: str | None,
    secret_file: Path | None,
    smtp: str | None,
    mail_from: str,
    mail_to: list[str],
    starttls: bool,
    use_ssl: bool,
    smtp_user: str | None,
    syslog: str | None,
    syslog_tcp: bool,
    facility: str,
) -> list[AlertSink]:
    from pacsradar.alerts import EmailSink, SyslogSink, WebhookSink

    sinks: list[AlertSink] = []
    if webhook:
        secret = os.environ.get(ENV_WEBHOOK_SECRET, "")
        if secret_file:
            try:
                secret = Path(secret_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                shown = peer_text(str(secret_file), 200)
                raise UsageError(f"cannot read the webhook secret file '{shown}': {exc.strerror}") from None
        if not secret:
            raise UsageError(f"a webhook needs a secret: --webhook-secret-file or ${ENV_WEBHOOK_SECRET}")
        sinks.append(WebhookSink(webhook, secret))
    if smtp:
        host, _, port = smtp.rpartition(":") if ":" in smtp else (smtp, "", "")
        if not mail_to:
            raise UsageError("--smtp needs at least one --mail-to")
        sinks.append(
            EmailSink(
                host or smtp,
                int(port) if port.isdigit() else (465 if use_ssl else 25),
                sender=mail_from,
                recipients=mail_to,
                starttls=starttls,
                use_ssl=use_ssl,
                username=smtp_user,
                password=os.environ.get(ENV_SMTP_PASSWORD),
            )
        )
    if syslog:
        if syslog.startswith("/"):
            sinks.append(SyslogSink(syslog, facility=facility))
        else:
            host, _, port = syslog.rpartition(":")
            if not host or not port.isdigit():
                raise UsageError("--syslog takes /dev/log or HOST:PORT")
            sinks.append(
                SyslogSink(
                    (host.strip("[]"), int(port)), facility=facility, protocol="tcp" if syslog_tcp else "udp"
                )
            )
    return sinks


# DB_HELP, fail, open_db, open_writer: moved to cli.dbopen, still importable from here.
__all__ = ["DB_HELP", "fail", "open_db", "open_writer", "parse_expiry", "register"]
