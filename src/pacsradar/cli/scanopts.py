"""Scan options shared by `pacsradar scan` and `pacsradar monitor`: declared once, built once.

A monitor runs the same scan on a schedule, so it takes the same scope, exclusions, rate and
timeouts as `scan` (README "Safety": only what the user named, exclusions win, explicit limits).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from pacsradar.config import (
    DEFAULT_DICOM_PORTS,
    DEFAULT_SHARE_PORTS,
    DEFAULT_WEB_PORTS,
    GATES,
    Limits,
    ScanOptions,
)
from pacsradar.errors import ClusterError as ClusterFailure
from pacsradar.errors import UsageError
from pacsradar.families import SCAN_FAMILIES
from pacsradar.models import ScanReport
from pacsradar.phi import KeyedHasher, peer_text
from pacsradar.targets import parse_ports

ONLY_CHOICES = SCAN_FAMILIES

OPT_EXCLUDE = typer.Option([], "--exclude", "-x", help="Never scan these (wins over targets; @file too).")
OPT_INPUT_LIST = typer.Option(
    [],
    "-iL",
    "--input-list",
    help="Read targets from FILE, one or more a line (as nmap -iL; same as @FILE); '-' is standard input.",
)
OPT_PORTS = typer.Option(
    None,
    "--ports",
    "-p",
    help="Exactly these ports, e.g. 4242,8000-8010 (as nmap -p); +4242 adds them to the defaults.",
)
OPT_EXTRA_PORTS = typer.Option(None, "--extra-ports", help="Ports to probe in addition to the default sets.")
OPT_DEFAULT_PORTS = typer.Option(
    None,
    "--default-ports/--no-default-ports",
    help="Probe the default DICOM/web/share port sets (default: yes, unless -p names exact ports).",
)
OPT_ONLY = typer.Option(None, "--only", help="dicom, web or share (repeatable; default all three).")
OPT_ALLOW_LARGE = typer.Option(False, "--allow-large-scope", help="Allow more than 65,536 hosts.")
OPT_CONCURRENCY = typer.Option(
    0,
    "--concurrency",
    help="Upper bound on endpoints audited at once (0: what --rate needs, within the open-file limit).",
)
OPT_PER_HOST = typer.Option(4, "--per-host", help="Connections per host at once.")
OPT_RATE = typer.Option(1000.0, "--rate", help="New connections per second (0: unlimited).")
OPT_GATE = typer.Option(
    "auto",
    "--gate",
    help="How a sweep finds answering ports: connect (a socket each), syn (one raw socket, "
    "root), auto (syn when the open-file limit cannot hold what --rate needs).",
)
OPT_CONNECT_TIMEOUT = typer.Option(3.0, "--connect-timeout", help="Seconds for a TCP connect.")
OPT_READ_TIMEOUT = typer.Option(5.0, "--read-timeout", help="Seconds for each reply.")
OPT_ASSOC_TIMEOUT = typer.Option(
    2.0,
    "--assoc-timeout",
    help="Seconds a peer gets to answer an A-ASSOCIATE-RQ; silence is reported as 'no answer'.",
)
OPT_DEADLINE = typer.Option(60.0, "--deadline", help="Seconds for everything on one endpoint.")
OPT_MAX_RECORDS = typer.Option(10_000, "--max-records", help="Stop C-FIND/QIDO counting here and report ≥ N.")
OPT_INTRUSIVE = typer.Option(
    False,
    "--intrusive",
    help="Opt-in checks (C-MOVE probe to an unknown destination; never moves data).",
)
OPT_AET_WORDLIST = typer.Option(None, "--aet-wordlist", help="Extra called AE titles to try.")
OPT_HONEYPOT_THRESHOLD = typer.Option(
    50,
    "--honeypot-threshold",
    help="DICOM honeypot score (0-100) from which a service's findings are marked and left out "
    "of exposure totals (README 'Honeypots').",
)
OPT_COUNT_HONEYPOTS = typer.Option(
    False,
    "--count-honeypots",
    help="Keep the honeypot score but mark nothing: suspects count like any service.",
)
OPT_WORKERS = typer.Option(
    None, "--workers", help="Run on a local Dask cluster of N worker processes (limits are totals)."
)
OPT_SCHEDULER = typer.Option(
    None, "--scheduler", help="Run on the Dask cluster of this scheduler, e.g. tcp://127.0.0.1:8786."
)
OPT_CALLING_AET = typer.Option("PACSRADAR", "--calling-aet", help="Calling AE title for non-random probes.")


def parse_only(only: list[str] | None) -> frozenset[str]:
    """``--only`` values, repeated or comma-separated; none means all three families."""
    chosen = frozenset(part.strip() for value in only or () for part in value.split(",") if part.strip())
    chosen = chosen or frozenset(ONLY_CHOICES)
    if chosen - set(ONLY_CHOICES):
        raise UsageError(f"--only takes {', '.join(ONLY_CHOICES)}")
    return chosen


def port_sets(
    ports: str | None, extra_ports: str | None, default_ports: bool | None
) -> tuple[bool, tuple[int, ...]]:
    """``(use the default sets, other ports)`` from ``-p``, ``--extra-ports`` and the toggle.

    ``-p`` is the exact list, as in nmap, masscan and nuclei; ``-p +LIST`` and ``--extra-ports``
    add to the default sets instead.
    """
    spec = (ports or "").strip()
    additive = spec.startswith("+")
    if additive:
        spec = spec[1:].strip()
        if not spec:
            raise UsageError("-p + needs ports after the '+', e.g. -p +4242")
    listed = parse_ports(spec) if spec else ()
    extra = parse_ports(extra_ports) if extra_ports and extra_ports.strip() else ()
    use_defaults = default_ports if default_ports is not None else (not listed or additive)
    chosen = tuple(dict.fromkeys((*listed, *extra)))
    if not use_defaults and not chosen:
        raise UsageError("--no-default-ports needs -p PORTS")
    return use_defaults, chosen


def scan_options(
    *,
    ports: str | None,
    only: list[str] | None,
    concurrency: int,
    per_host: int,
    rate: float,
    connect_timeout: float,
    read_timeout: float,
    assoc_timeout: float,
    deadline: float,
    max_records: int,
    intrusive: bool,
    aet_wordlist: Path | None,
    calling_aet: str,
    link_key: str | None,
    default_ports: bool | None = None,
    extra_ports: str | None = None,
    honeypot_threshold: int = 50,
    count_honeypots: bool = False,
    gate: str = "auto",
    remote: bool = False,
) -> ScanOptions:
    """The CLI's scan options as a :class:`ScanOptions`; a bad value is a :class:`UsageError`."""
    chosen = parse_only(only)
    words: tuple[str, ...] = ()
    if aet_wordlist is not None:
        try:
            text = aet_wordlist.read_text(encoding="utf-8", errors="replace")[: 1 << 20]
        except OSError as exc:
            shown = peer_text(str(aet_wordlist), 200)
            raise UsageError(f"cannot read --aet-wordlist '{shown}': {exc.strerror}") from None
        words = tuple(w.strip() for w in text.splitlines() if w.strip() and not w.startswith("#"))
    if not 1 <= len(calling_aet) <= 16:
        raise UsageError("--calling-aet must be 1 to 16 characters (PS3.5 AE VR)")
    if concurrency < 0:
        raise UsageError("--concurrency must be 0 (automatic) or more")
    for name, value in (
        ("--per-host", per_host),
        ("--max-records", max_records),
    ):
        if value < 1:
            raise UsageError(f"{name} must be at least 1")
    if not 0 <= honeypot_threshold <= 100:
        raise UsageError("--honeypot-threshold must be a score from 0 to 100")
    if not math.isfinite(rate) or rate < 0:
        raise UsageError("--rate must be 0 (unlimited) or a positive number of connections per second")
    for name, seconds in (
        ("--connect-timeout", connect_timeout),
        ("--read-timeout", read_timeout),
        ("--assoc-timeout", assoc_timeout),
        ("--deadline", deadline),
    ):
        if not math.isfinite(seconds) or seconds <= 0:
            raise UsageError(f"{name} must be a positive number of seconds")
    if gate not in GATES:
        raise UsageError(f"--gate takes {', '.join(GATES)}")
    if gate == "syn" and not remote:  # a remote cluster's workers may have the right; not ours to say
        from pacsradar.syngate import unavailable_reason

        reason = unavailable_reason()
        if reason is not None:
            raise UsageError(f"--gate syn: {reason}")
    use_defaults, extra = port_sets(ports, extra_ports, default_ports)
    return ScanOptions(
        limits=Limits(
            concurrency=concurrency,
            per_host=per_host,
            rate=rate,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            assoc_timeout=assoc_timeout,
            target_deadline=deadline,
            gate=gate,
        ),
        only=chosen,
        extra_ports=extra,
        dicom_ports=DEFAULT_DICOM_PORTS if use_defaults else (),
        web_ports=DEFAULT_WEB_PORTS if use_defaults else (),
        share_ports=DEFAULT_SHARE_PORTS if use_defaults else (),
        max_records=max_records,
        intrusive=intrusive,
        aet_wordlist=words,
        calling_aet=calling_aet,
        hasher=KeyedHasher.from_passphrase(link_key) if link_key else KeyedHasher(),
        honeypot_threshold=honeypot_threshold,
        count_honeypots=count_honeypots,
    )


class StdinUse:
    """``-iL -`` and ``--import -``: what standard input feeds (one of them at most).

    ``-iL -`` is read to its end when the scan starts (targets may be CIDRs: the scope is sized
    first, as for a file); ``--import -`` is streamed (:mod:`pacsradar.pipe`).
    """

    def __init__(self, input_list: Sequence[Path], import_file: Sequence[Path], *, cluster: object) -> None:
        self.lists = [p for p in input_list if str(p) != "-"]
        self.imports = [p for p in import_file if str(p) != "-"]
        self.targets_from_stdin = len(self.lists) != len(input_list)
        self.streamed = len(self.imports) != len(import_file)
        if self.targets_from_stdin and self.streamed:
            raise UsageError("standard input can feed -iL - or --import -, not both")
        if self.streamed and cluster:
            raise UsageError("--import - is read by this process: it cannot run on --workers/--scheduler")

    def read_targets(self) -> list[str]:
        """The tokens of ``-iL -`` (whitespace or commas between them, ``#`` comments)."""
        if not self.targets_from_stdin:
            return []
        import re
        import sys

        from pacsradar.targets import MAX_TARGET_FILE_BYTES

        try:
            data = sys.stdin.buffer.read(MAX_TARGET_FILE_BYTES + 1)
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read -iL - (standard input): {exc}") from None
        if len(data) > MAX_TARGET_FILE_BYTES:
            raise UsageError(f"-iL - (standard input) is larger than {MAX_TARGET_FILE_BYTES:,} bytes")
        text = data.decode("utf-8-sig", errors="replace")
        tokens = [t for line in text.splitlines() for t in re.split(r"[,\s]+", line.partition("#")[0]) if t]
        if not tokens:
            raise UsageError("-iL - read no target from standard input")
        return tokens

    def stream(self) -> Any:
        """The :class:`pacsradar.pipe.ImportStream` of ``--import -``, or None."""
        if not self.streamed:
            return None
        import sys

        from pacsradar.pipe import ImportStream

        try:
            fd = sys.stdin.fileno()
        except (OSError, ValueError):
            raise UsageError("--import -: standard input is closed") from None
        if os.isatty(fd):  # nothing is piped in: say what it waits for, as `cat` would not
            print("reading --import - from the terminal: one line each, Ctrl-D to end", file=sys.stderr)
        return ImportStream(fd, name="--import - (standard input)")


def check_cluster(workers: int | None, scheduler: str | None) -> None:
    """``--workers``/``--scheduler`` are valid (checked before anything is scanned)."""
    if workers is None and scheduler is None:
        return  # a local scan never imports the cluster code
    from pacsradar.distributed.frontend import check_cluster_options

    check_cluster_options(workers, scheduler)


def cluster_scan(session: Any, **kwargs: Any) -> ScanReport:
    """A scan on Dask (``pacsradar.distributed``, imported only when a cluster is asked for)."""
    from pacsradar.distributed.frontend import cluster_scan as run

    return run(session, **kwargs)


class MonitorClusterOption:
    """``monitor --workers/--scheduler``: ``scan`` is the Monitor's scan function (None: local).

    A context manager: leaving it closes the cluster (a LocalCluster ends with it).
    """

    def __init__(
        self,
        targets: Sequence[str],
        workers: int | None,
        scheduler: str | None,
        exclude: Sequence[str],
        allow_large: bool,
    ) -> None:
        self.scan: Any = None
        if workers is not None or scheduler is not None:
            from pacsradar.distributed.frontend import MonitorCluster

            self.scan = MonitorCluster(
                targets, workers=workers, scheduler=scheduler, exclude=exclude, allow_large=allow_large
            )

    def __enter__(self) -> MonitorClusterOption:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.scan is not None:
            self.scan.close()


__all__ = [
    "ONLY_CHOICES",
    "ClusterFailure",
    "MonitorClusterOption",
    "StdinUse",
    "check_cluster",
    "cluster_scan",
    "parse_only",
    "port_sets",
    "scan_options",
]
