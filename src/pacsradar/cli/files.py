"""`pacsradar files`: audit local trees, NAS mounts and anonymous shares for DICOM and PHI."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from pacsradar.cli.common import (
    OPT_ALLOW_INCOMPLETE,
    OPT_FAIL_ON,
    OPT_FORMAT,
    OPT_LINK_KEY,
    OPT_LOG_LEVEL,
    OPT_NO_PROGRESS,
    OPT_OUTPUT,
    emit,
    exit_code,
    output_target,
    print_error,
    setup_logging,
    stderr_console,
)
from pacsradar.cli.exitcodes import ExitCode
from pacsradar.errors import PacsradarError, UsageError
from pacsradar.models import Severity, TargetResult
from pacsradar.phi import KeyedHasher, peer_text


class FilesProgress:
    """Files done and files/s on stderr (the audit itself never prints)."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            TextColumn("{task.completed:,} files"),
            TextColumn("{task.fields[dicom]:,} DICOM"),
            TextColumn("{task.fields[rate]:,.0f} files/s"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task: TaskID | None = None
        self.t0 = time.monotonic()
        self.base = 0

    def __enter__(self) -> FilesProgress:
        if self.enabled:
            self.progress.start()
            self.task = self.progress.add_task("auditing", total=None, dicom=0, rate=0.0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()

    def next_root(self) -> None:
        if self.task is not None:
            self.base = int(self.progress.tasks[0].completed)

    def __call__(self, files: int, dicom: int) -> None:
        if self.task is None:
            return
        done = self.base + files
        rate = done / max(time.monotonic() - self.t0, 1e-6)
        self.progress.update(self.task, completed=done, dicom=dicom, rate=rate)


def register(app: typer.Typer) -> None:
    @app.command()
    def files(
        targets: list[str] = typer.Argument(
            ..., help="Paths, or ftp://host[:port]/dir, smb://host[:port][/share], http(s)://host/dir/."
        ),
        output_format: str = OPT_FORMAT,
        output: Path = OPT_OUTPUT,
        fail_on: Severity = OPT_FAIL_ON,
        allow_incomplete: bool = OPT_ALLOW_INCOMPLETE,
        show_paths: bool = typer.Option(
            False,
            "--show-paths",
            help="Report file paths (they can hold patient names); else keyed hashes only.",
        ),
        follow_symlinks: bool = typer.Option(
            False, "--follow-symlinks", help="Follow symlinks (loops are detected and counted)."
        ),
        workers: int = typer.Option(0, "--workers", help="Worker processes (0: all cores)."),
        max_files: int = typer.Option(0, "--max-files", help="Stop after N files (0: no limit)."),
        share_max_files: int = typer.Option(10_000, help="Files read at most per share."),
        share_max_bytes: int = typer.Option(256 * 1024 * 1024, help="Bytes read at most per share."),
        share_max_depth: int = typer.Option(16, help="Directory depth at most on a share."),
        timeout: float = typer.Option(10.0, help="Seconds for each network operation."),
        archives: bool = typer.Option(
            True, "--archives/--no-archives", help="Open ZIP, gzip, bzip2, xz and tar archives."
        ),
        archive_max_bytes: int = typer.Option(4 << 30, help="Uncompressed bytes read at most per archive."),
        archive_max_run_bytes: int = typer.Option(
            64 << 30, help="Uncompressed bytes read at most in all archives of the run."
        ),
        archive_max_ratio: float = typer.Option(
            200.0, help="Compression ratio at most (uncompressed/compressed, past 1 MiB): zip bombs."
        ),
        archive_max_members: int = typer.Option(100_000, help="Members per archive at most."),
        archive_max_depth: int = typer.Option(2, help="Archive levels opened (2: an archive in an archive)."),
        archive_timeout: float = typer.Option(300.0, help="Seconds per archive at most."),
        link_key: str = OPT_LINK_KEY,
        log_level: str = OPT_LOG_LEVEL,
        no_progress: bool = OPT_NO_PROGRESS,
    ) -> None:
        """Find DICOM files by content and count the patient data they expose (PS3.15 Annex E)."""
        # Imported here, not at the top: every other subcommand (scan among them) starts faster
        # without the file audit's imports.
        from pacsradar.files.local import audit_tree, local_result, make_report
        from pacsradar.files.options import ArchiveLimits, FileAuditOptions, default_workers
        from pacsradar.files.remote import audit_url

        err = stderr_console()
        try:
            setup_logging(log_level)
            for name, value in (
                ("--workers", workers),
                ("--max-files", max_files),
                ("--archive-max-bytes", archive_max_bytes),
                ("--archive-max-run-bytes", archive_max_run_bytes),
                ("--archive-max-ratio", archive_max_ratio),
                ("--archive-max-members", archive_max_members),
                ("--archive-max-depth", archive_max_depth),
                ("--archive-timeout", archive_timeout),
            ):
                if value < 0:
                    raise UsageError(f"{name} must not be negative")
            options = FileAuditOptions(
                workers=workers or default_workers(),
                max_files=max_files or None,
                follow_symlinks=follow_symlinks,
                show_paths=show_paths,
                hasher=KeyedHasher.from_passphrase(link_key) if link_key else KeyedHasher(),
                share_max_files=share_max_files,
                share_max_bytes=share_max_bytes,
                share_max_depth=share_max_depth,
                timeout=timeout,
                archives=ArchiveLimits(
                    enabled=archives,
                    max_bytes=archive_max_bytes,
                    max_run_bytes=archive_max_run_bytes,
                    max_ratio=archive_max_ratio,
                    max_members=archive_max_members,
                    max_depth=archive_max_depth,
                    max_seconds=archive_timeout,
                ),
            )
            out = output_target(output_format, output)
            for target in targets:
                if "://" not in target and not Path(target).exists() and not Path(target).is_symlink():
                    raise UsageError(f"no such file or directory: '{peer_text(target, 200)}'")
        except UsageError as exc:
            print_error(err, "error", exc)
            raise typer.Exit(ExitCode.USAGE) from None

        started = datetime.now(UTC)
        results: list[TargetResult] = []
        interrupted = False
        progress = FilesProgress(err, enabled=not no_progress and err.is_terminal)
        try:
            with progress:
                for target in targets:
                    t0 = time.monotonic()
                    if "://" in target:
                        results.append(audit_url(target, options))
                    else:
                        tally, interrupted = audit_tree(target, options, progress)
                        results.append(local_result(target, tally, (time.monotonic() - t0) * 1000, started))
                    progress.next_root()
                    if interrupted:
                        break
        except KeyboardInterrupt:
            interrupted = True
        except UsageError as exc:
            print_error(err, "error", exc)
            raise typer.Exit(ExitCode.USAGE) from None
        except PacsradarError as exc:
            print_error(err, "error", exc)
            raise typer.Exit(ExitCode.SCAN_ERROR) from None
        report = make_report(list(targets), results, started, options, interrupted=interrupted)
        emit(report, out, Console(highlight=False))
        # A file audit is not a stored scan: say so, so its id is not taken to `report`.
        err.print(Text("file audits are not stored in the findings store (use -o FILE to keep this one)"))
        raise typer.Exit(exit_code(report, fail_on, allow_incomplete=allow_incomplete))


__all__ = ["register"]
