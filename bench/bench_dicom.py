"""pacsradar vs nmap dicom-ping, echoscu and pynetdicom, side by side, on 127.0.0.0/8 only.

    python bench/bench_dicom.py [mixed|farm|sweep|all] [--hosts N] [--procs P] [--repeat R]
                                [--sweep-cidr 127.30.0.0/16] [--sweep-timeout S] [--sweep-nmap]
                                [--sweep-extra] [--keep]

Phases (see bench/README.md):

* mixed: a pynetdicom ExposedPacs with synthetic data, Orthanc (open, with data; and with its
  default configuration, which aborts C-FIND from unknown AEs), DCMTK dcmqrscp (AE-restricted)
  and storescp +tls when installed, a stdlib HTTP server on a DICOM port and a silent host
  (accepts TCP, never answers). pacsradar's full default audit (every family, a fresh store,
  default timeouts) and its DICOM-only audit vs nmap ``--script dicom-ping`` over the same
  addresses, in one run, with the ratio; plus a closed-port scan (start-up cost). Issue 11
  targets: the full default audit >= 10x sooner than nmap, a closed-port scan under 0.5 s.
* farm: ``--hosts`` asyncio DICOM SCPs (bench/farm_scp.py) on distinct 127.20.x.y addresses,
  ``--procs`` server processes. pacsradar (CLI defaults, and the same single port as the others)
  vs nmap dicom-ping, /usr/bin/echoscu loops (sequential, xargs -P 2 and -P 8) and a pynetdicom
  associate + C-ECHO loop. Issue target: pacsradar hosts/s >= nmap's.
* sweep: ``pacsradar scan 127.30.0.0/16 -p 11112 --only dicom --allow-large-scope`` over mostly
  closed ports (16 farm SCPs inside); peak RSS (wait4 rusage) and wall. Target <= 300 MB.

Every tool runs as a subprocess in its own session, timed with wait4 (wall, user+sys CPU, peak
RSS), bounded by a timeout (SIGINT, then SIGKILL). Every server is stopped in ``finally``.
Results: a table on stdout and JSON under bench/results/ (gitignored).

Network rule: only 127.0.0.0/8; nmap always with ``-n``; Orthanc and DCMTK bind 0.0.0.0 on
fresh free ports. The bench prints no peer data (all of it is synthetic anyway).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
# tests/lab modules import each other as ``lab.*``; the repo root makes ``tests.lab`` work too.
for _p in (REPO / "tests", REPO):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

NMAP = "/usr/bin/nmap"
ECHOSCU = "/usr/bin/echoscu"  # absolute: PATH ``echoscu`` is a pynetdicom shim
FARM_PORT = 11112
_PACSRADAR_SCRIPT = Path(sys.executable).with_name("pacsradar")
# The real console script, not the pyenv shim (the shim adds a bash + pyenv exec per run).
PACSRADAR: list[str] = (
    [str(_PACSRADAR_SCRIPT)]
    if _PACSRADAR_SCRIPT.is_file()
    else [
        sys.executable,
        "-c",
        "import sys; from pacsradar.cli import main; sys.argv[0] = 'pacsradar'; main()",
    ]
)
PR_COMMON = ["--only", "dicom", "-f", "json", "--no-store", "--no-progress"]
#: The same CLI with DICOM-HONEYPOT-SUSPECT taken out of the registry (issue 15's overhead A/B):
#: the only difference from PACSRADAR is the check list, so the ratio is the check's own cost.
PACSRADAR_NO_HONEYPOT: list[str] = [
    sys.executable,
    "-c",
    "import sys; import pacsradar.registry as r; "
    "r.DICOM_CHECK_MODULES = tuple(m for m in r.DICOM_CHECK_MODULES if not m.endswith('.honeypot')); "
    "from pacsradar.cli import main; sys.argv[0] = 'pacsradar'; main()",
]
#: The full default audit as a user runs it: every family, the store (a fresh one per run).
PR_FULL = ["-f", "json", "--no-progress"]


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------
@dataclass
class Run:
    phase: str
    tool: str
    command: str
    hosts: int
    endpoints: int
    wall_s: float = 0.0
    cpu_s: float = 0.0  # user + sys of the tool and the children it reaped
    peak_rss_mb: float = 0.0
    returncode: int | None = None
    timed_out: bool = False
    found: str = ""
    load1_before: float = 0.0
    server_cpu_s: float | None = None  # CPU the bench's own servers spent during this run
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def hosts_per_s(self) -> float:
        return self.hosts / self.wall_s if self.wall_s > 0 else 0.0


def _proc_cpu(pids: Sequence[int]) -> float:
    """utime + stime (s) of live processes, from /proc (Linux); 0 for a pid that is gone."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    """VmRSS (now) or VmHWM (the process's own peak since exec) in MB; 0 once it is gone."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_tool(
    run: Run,
    argv: Sequence[str],
    *,
    timeout: float,
    workdir: Path,
    server_pids: Sequence[int] = (),
    sample_rss: bool = False,
) -> tuple[Run, Path]:
    """Run ``argv`` in its own session; fill in wall, CPU, peak RSS. Returns (run, stdout path)."""
    tag = re.sub(r"[^a-z0-9]+", "-", f"{run.phase}-{run.tool}".lower()).strip("-")
    out_path, err_path = workdir / f"{tag}.out", workdir / f"{tag}.err"
    run.command = " ".join(argv)
    run.load1_before = round(os.getloadavg()[0], 2)
    server_cpu0 = _proc_cpu(server_pids)
    timeline: list[tuple[float, float]] = []
    with out_path.open("wb") as out, err_path.open("wb") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(
            list(argv), stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True
        )
        interrupted_at: float | None = None
        next_sample = t0
        hwm = 0.0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            now = time.monotonic()
            # Peak RSS from VmHWM, not wait4's ru_maxrss: a child forked from this (large) bench
            # process inherits the parent's RSS as its high-water mark before exec.
            hwm = max(hwm, _rss_mb(proc.pid, "VmHWM"))
            if sample_rss and now >= next_sample:
                timeline.append((round(now - t0, 1), round(_rss_mb(proc.pid), 1)))
                next_sample = now + 2.0
            if interrupted_at is None and now - t0 > timeout:
                run.timed_out = True
                interrupted_at = now
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGINT)  # pacsradar: stop, keep partial results
            elif interrupted_at is not None and now - interrupted_at > 30:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.02)
        run.wall_s = round(time.monotonic() - t0, 3)
    proc.returncode = os.waitstatus_to_exitcode(status)
    run.returncode = proc.returncode
    run.cpu_s = round(usage.ru_utime + usage.ru_stime, 2)
    # VmHWM of the tool's own process, sampled every ~20 ms (wait4's ru_maxrss kept in the JSON).
    run.peak_rss_mb = round(hwm, 1)
    run.extra["ru_maxrss_mb"] = round(usage.ru_maxrss / 1024, 1)
    if server_pids:
        run.server_cpu_s = round(_proc_cpu(server_pids) - server_cpu0, 2)
    if timeline:
        run.extra["rss_timeline_s_mb"] = timeline
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # nothing of the tool's session may outlive it
    return run, out_path


# --------------------------------------------------------------------------------------------
# Output parsing (counts only; no peer strings are printed)
# --------------------------------------------------------------------------------------------
def parse_pacsradar(run: Run, out: Path) -> dict[str, Any]:
    try:
        report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        run.found = "no JSON report"
        return {}
    dicom = [r for r in report.get("results", []) if r.get("service") in ("dicom", "dicom-tls")]
    other = [r for r in report.get("results", []) if r.get("service") not in ("dicom", "dicom-tls")]
    sev: dict[str, int] = {}
    for r in report.get("results", []):
        for f in r.get("findings", []):
            sev[f.get("severity", "?")] = sev.get(f.get("severity", "?"), 0) + 1
    stats = report.get("stats", {})
    run.found = f"{len({r['endpoint']['host'] for r in dicom})} hosts / {len(dicom)} DICOM endpoints"
    run.extra.update(
        stats=stats,
        dicom_endpoints=len(dicom),
        dicom_tls_endpoints=sum(1 for r in dicom if r.get("service") == "dicom-tls"),
        other_reachable=[
            {"port": r["endpoint"]["port"], "service": r.get("service"), "error": r.get("error")}
            for r in other
        ][:50],
        findings_by_severity=sev,
        per_endpoint_ms=sorted(
            (
                {
                    "host": r["endpoint"]["host"],
                    "port": r["endpoint"]["port"],
                    "service": r.get("service"),
                    "ms": round(r.get("duration_ms") or 0),
                }
                for r in report.get("results", [])
            ),
            key=lambda e: -e["ms"],
        )[:12],
    )
    return report


def parse_nmap(run: Run, out: Path) -> None:
    text = out.read_text(encoding="utf-8", errors="replace")
    found = text.count("DICOM Service Provider discovered")
    open_ports = len(re.findall(r"^\d+/tcp\s+open\s", text, flags=re.M))
    m = re.search(r"Nmap done: (\d+) IP address", text)
    run.found = f"{found} DICOM / {open_ports} open ports"
    run.extra.update(dicom_found=found, open_ports=open_ports, nmap_hosts=int(m.group(1)) if m else None)


# --------------------------------------------------------------------------------------------
# Peers
# --------------------------------------------------------------------------------------------
def _loopback(host: str) -> str:
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"refusing non-loopback address {host}")
    return host


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((_loopback(host), port), timeout):
        return True
    return False


def foreign_listeners(host: str, ports: Sequence[int]) -> list[int]:
    """Ports already open on an address we never bound: someone's 0.0.0.0 listener."""
    return [p for p in ports if port_open(host, p)]


class _QuietHttp(BaseHTTPRequestHandler):
    server_version = "bench-http"

    def do_GET(self) -> None:
        body = b"bench\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


class _QuietHttpServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # scanners hang up mid-request; that is the point, not an error worth printing


def start_http(stack: contextlib.ExitStack, host: str, port: int) -> None:
    """A real (stdlib) line-based HTTP server on a DICOM port: the non-DICOM listener."""
    srv = _QuietHttpServer((_loopback(host), port), _QuietHttp)
    srv.daemon_threads = True
    srv.timeout = 60
    t = threading.Thread(target=srv.serve_forever, name="bench-http", daemon=True)
    t.start()

    def stop() -> None:
        srv.shutdown()
        srv.server_close()

    stack.callback(stop)


def start_silent(stack: contextlib.ExitStack, host: str, port: int) -> str:
    """Accepts TCP, never sends a byte. tests/lab/hostile.Silent when available."""
    try:
        from lab.hostile import Silent, run_in_thread

        threaded = run_in_thread(Silent(_loopback(host), port))
        stack.callback(threaded.stop)
        return "tests/lab/hostile.Silent"
    except ImportError:
        pass
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((_loopback(host), port))
    sock.listen(256)
    held: list[socket.socket] = []
    stopping = threading.Event()

    def accept() -> None:
        while not stopping.is_set():
            with contextlib.suppress(OSError):
                conn, _ = sock.accept()
                held.append(conn)

    threading.Thread(target=accept, name="bench-silent", daemon=True).start()

    def stop() -> None:
        stopping.set()
        sock.close()
        for c in held:
            c.close()

    stack.callback(stop)
    return "bench fallback (socket that never answers)"


@dataclass
class Farm:
    procs: list[subprocess.Popen[bytes]]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
            if p.stdin:
                with contextlib.suppress(OSError):
                    p.stdin.close()
            if p.stdout:
                p.stdout.close()


def start_farm(first: str, count: int, procs: int, *, step: int = 1, port: int = FARM_PORT) -> Farm:
    """``count`` SCPs at first, first+step, ... split over ``procs`` farm_scp.py processes."""
    start = int(ipaddress.IPv4Address(_loopback(first)))
    _loopback(str(ipaddress.IPv4Address(start + (count - 1) * step)))
    per = -(-count // procs)
    farm = Farm([])
    try:
        for i in range(procs):
            n = min(per, count - i * per)
            if n <= 0:
                break
            base = str(ipaddress.IPv4Address(start + i * per * step))
            farm.procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(BENCH / "farm_scp.py"),
                        "--first",
                        base,
                        "--count",
                        str(n),
                        "--step",
                        str(step),
                        "--port",
                        str(port),
                    ],
                    stdin=subprocess.PIPE,  # closing it (or our death) stops the server
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
            )
        for p in farm.procs:
            assert p.stdout is not None
            line = p.stdout.readline().decode().strip()
            if not line.startswith("READY"):
                raise RuntimeError(f"farm server failed to start ({line or 'no output'})")
    except BaseException:
        farm.stop()
        raise
    return farm


def farm_addresses(first: str, count: int, step: int = 1) -> list[str]:
    start = int(ipaddress.IPv4Address(first))
    return [str(ipaddress.IPv4Address(start + i * step)) for i in range(count)]


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------
def print_table(title: str, runs: Sequence[Run], baseline: Run | None) -> None:
    print(f"\n== {title}")
    head = f"{'tool':<52} {'wall s':>8} {'hosts/s':>9} {'CPU s':>7} {'RSS MB':>7} {'x base':>7}  found"
    print(head)
    print("-" * len(head))
    for r in runs:
        ratio = r.wall_s / baseline.wall_s if baseline and baseline.wall_s else float("nan")
        flag = " TIMEOUT" if r.timed_out else ""
        print(
            f"{r.tool:<52} {r.wall_s:>8.2f} {r.hosts_per_s:>9.1f} {r.cpu_s:>7.2f} "
            f"{r.peak_rss_mb:>7.1f} {ratio:>7.2f}  {r.found}{flag}"
        )
    if baseline:
        print(f"('x base' = wall time / wall time of '{baseline.tool}')")


def verdict(text: str, ok: bool) -> str:
    line = f"TARGET {'MET ' if ok else 'MISSED'}: {text}"
    print(line)
    return line


# --------------------------------------------------------------------------------------------
# Phases
# --------------------------------------------------------------------------------------------
def start_storescp_tls_fork(workdir: Path) -> Any:
    """storescp +tls like tests/lab/dcmtk.start_storescp_tls, plus ``--fork``.

    The lab's storescp serves one association at a time; in this bench its 0.0.0.0 port is
    reached through every lab address at once, so a single-association server would measure
    its own queue, not the scanners. Falls back to the lab launcher if its internals move.
    """
    try:
        from lab.dcmtk import STORESCP, TLS_PROFILES, _launch
        from lab.tls import make_self_signed
    except ImportError:
        from lab.dcmtk import start_storescp_tls

        return start_storescp_tls(workdir)
    cert = make_self_signed(workdir / "tls", "storescp")
    incoming = workdir / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    args = [
        str(STORESCP),
        "+tls",
        str(cert.key),
        str(cert.cert),
        "-pw",
        TLS_PROFILES["bcp195-nd"],
        "-ic",
        "-aet",
        "TLSSCP",
        "-od",
        str(incoming),
        "-dhl",
        "-ta",
        "10",
        "-ts",
        "30",
        "--fork",
    ]
    return _launch("storescp", lambda port: [*args, str(port)], workdir, "TLSSCP", 30.0)


def _time_variants(
    phase: str,
    variants: Sequence[tuple[str, list[str], Callable[[Run, Path], Any]]],
    *,
    hosts: int,
    endpoints: int,
    args: argparse.Namespace,
    work: Path,
) -> list[Run]:
    runs: list[Run] = []
    for name, argv, parse in variants:
        best: Run | None = None
        for _ in range(args.repeat):
            run, out = run_tool(
                Run(phase, name, "", hosts, endpoints), argv, timeout=args.timeout, workdir=work
            )
            parse(run, out)
            if best is None or run.wall_s < best.wall_s:
                best = run
        assert best is not None
        runs.append(best)
    return runs


def phase_mixed(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from pacsradar.config import DEFAULT_DICOM_PORTS
    from pacsradar.lab.pacs import ExposedPacs
    from pacsradar.lab.synthetic import make_studies

    hosts = ["127.77.0.1", "127.77.0.2", "127.77.0.3"]
    peers: dict[str, str] = {}
    extra_ports: list[int] = []
    verdicts: list[str] = []
    with contextlib.ExitStack() as stack:
        pacs = ExposedPacs(make_studies(25, seed=7), host=hosts[0], port=FARM_PORT)
        pacs.start()
        stack.callback(pacs.stop)
        peers[f"{hosts[0]}:{FARM_PORT}"] = "pynetdicom ExposedPacs (25 synthetic patients, any AE)"
        start_http(stack, hosts[1], FARM_PORT)
        peers[f"{hosts[1]}:{FARM_PORT}"] = "stdlib HTTP server (non-DICOM listener)"
        peers[f"{hosts[2]}:{FARM_PORT}"] = "silent: " + start_silent(stack, hosts[2], FARM_PORT)
        try:
            from lab.orthanc import orthanc_available, orthanc_default, orthanc_open_dicom, start_orthanc

            if orthanc_available():
                orthanc = start_orthanc(work / "orthanc", orthanc_open_dicom(), plugins=())
                stack.callback(orthanc.stop)
                orthanc.upload(make_studies(5, seed=11))
                extra_ports.append(orthanc.dicom_port)
                peers[f"0.0.0.0:{orthanc.dicom_port}"] = "Orthanc 1.10, DICOM open (5 synthetic patients)"
                # Orthanc's own defaults: C-FIND from an unknown AE is answered with A-ABORT,
                # which must end pacsradar's wait at once (issue 11).
                default = start_orthanc(work / "orthanc-default", orthanc_default(), plugins=())
                stack.callback(default.stop)
                extra_ports.append(default.dicom_port)
                peers[f"0.0.0.0:{default.dicom_port}"] = "Orthanc 1.10, default configuration"
            else:
                peers["orthanc"] = "skipped: not installed"
        except Exception as exc:
            peers["orthanc"] = f"skipped: {type(exc).__name__}: {exc}"
        try:
            from lab.dcmtk import dcmtk_available, start_dcmqrscp

            if dcmtk_available():
                (work / "dcmqr").mkdir()
                qr = start_dcmqrscp(work / "dcmqr", make_studies(3, seed=13))
                stack.callback(qr.stop)
                extra_ports.append(qr.port)
                peers[f"0.0.0.0:{qr.port}"] = "DCMTK dcmqrscp (AE-restricted: RJ for unknown AEs)"
                (work / "storescp").mkdir()
                tls = start_storescp_tls_fork(work / "storescp")
                stack.callback(tls.stop)
                extra_ports.append(tls.port)
                peers[f"0.0.0.0:{tls.port}"] = "DCMTK storescp +tls --fork (DICOM-TLS)"
            else:
                peers["dcmtk"] = "skipped: not installed"
        except Exception as exc:
            peers["dcmtk"] = f"skipped: {type(exc).__name__}: {exc}"

        ports = sorted(set(DEFAULT_DICOM_PORTS) | {FARM_PORT} | set(extra_ports))
        extras = sorted(set(ports) - set(DEFAULT_DICOM_PORTS))
        target = f"{hosts[0]}-{hosts[-1].rsplit('.', 1)[1]}"
        n_endpoints = len(hosts) * len(ports)
        print("\nmixed lab peers:")
        for where, what in peers.items():
            print(f"  {where:<22} {what}")
        print(
            f"  (0.0.0.0 peers answer on all {len(hosts)} lab addresses; "
            f"{len(hosts)} hosts x {len(ports)} ports = {n_endpoints} endpoints for every tool)"
        )
        # The 0.0.0.0 peers are expected; anything else open would be someone else's listener.
        stray = [p for p in foreign_listeners("127.77.0.9", ports) if p not in extra_ports]
        if stray:
            print(f"  WARNING: ports {stray} are open on every 127.x address (foreign 0.0.0.0 listener)")

        pr = [
            *PACSRADAR,
            "scan",
            target,
            *(["--ports", ",".join(map(str, extras))] if extras else []),
            *PR_COMMON,
        ]
        nmap = [NMAP, "-n", "-Pn", "-sT", "-p", ",".join(map(str, ports))]
        pr_full = [
            *PACSRADAR,
            "scan",
            target,
            *(["--ports", ",".join(map(str, extras))] if extras else []),
            *PR_FULL,
        ]
        # One store for every pacsradar run, created (migrated) by the untimed warm-up below: a
        # weekly scan opens a store that is already current.
        store_db = ["--db", f"sqlite:///{work / 'mixed-store.db'}"]

        variants: list[tuple[str, list[str], Callable[[Run, Path], Any]]] = [
            ("pacsradar full default audit (all families, store)", [*pr_full, *store_db], parse_pacsradar),
            ("pacsradar full default audit (--no-store)", [*pr_full, "--no-store"], parse_pacsradar),
            ("pacsradar --only dicom (CLI defaults)", pr, parse_pacsradar),
            (
                "pacsradar --assoc-timeout 1 (LAN)",
                [*pr, "--assoc-timeout", "1"],
                parse_pacsradar,
            ),
            ("pacsradar --per-host 16 (no slot starvation)", [*pr, "--per-host", "16"], parse_pacsradar),
            (
                "pacsradar full default audit, store, no honeypot check",
                [*PACSRADAR_NO_HONEYPOT, *pr_full[len(PACSRADAR):], *store_db],
                parse_pacsradar,
            ),
            ("nmap -sT --script dicom-ping", [*nmap, "--script", "dicom-ping", target], parse_nmap),
            (
                "nmap -sT --script +dicom-ping (forced on all ports)",
                [*nmap, "--script", "+dicom-ping", target],
                parse_nmap,
            ),
        ]
        # Start-up cost alone: one closed port, with a store that is already current, and without.
        closed_db = store_db
        variants += [
            (
                "pacsradar closed port (store current)",
                [*PACSRADAR, "scan", "127.77.0.9", "-p", "9", "--no-default-ports", *PR_FULL, *closed_db],
                parse_pacsradar,
            ),
            (
                "pacsradar closed port (--no-store)",
                [*PACSRADAR, "scan", "127.77.0.9", "-p", "9", "--no-default-ports", *PR_COMMON],
                parse_pacsradar,
            ),
        ]
        # Untimed: compile our byte code once (as an installed pacsradar has it) and create the
        # closed-port run's store, so both rows time a warm start, not a first one.
        subprocess.run(
            [*PACSRADAR, "scan", "127.77.0.9", "-p", "9", "--no-default-ports", *PR_FULL, *closed_db],
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip
        runs = _time_variants(
            "mixed", variants, hosts=len(hosts), endpoints=n_endpoints, args=args, work=work
        )
    base = runs[0]
    print_table("mixed lab: pacsradar's default audit vs nmap dicom-ping, one run", runs, base)
    for r in runs:
        if r.tool.startswith("pacsradar"):
            slow = ", ".join(
                f"{e['host'].rsplit('.', 1)[1]}:{e['port']}={e['ms']}ms"
                for e in r.extra.get("per_endpoint_ms", [])[:5]
            )
            print(f"  {r.tool}: slowest endpoints {slow}")
    nm = next((r for r in runs if r.tool.startswith("nmap")), None)
    if nm:
        ratio = nm.wall_s / base.wall_s
        verdicts.append(
            verdict(
                f"mixed: nmap dicom-ping wall / pacsradar full default audit wall = {ratio:.1f}x "
                "(target >= 10x)",
                ratio >= 10,
            )
        )
        for r in runs[1:]:
            if r.tool.startswith("pacsradar") and "closed port" not in r.tool:
                print(f"  ({r.tool}: {nm.wall_s / r.wall_s:.1f}x)")
    for r in runs:
        if "closed port" in r.tool:
            verdicts.append(verdict(f"{r.tool}: {r.wall_s:.2f}s wall (target < 0.5s)", r.wall_s < 0.5))
    # Issue 15: honeypot scoring costs <= 5% of the full default audit (wall; CPU beside it).
    without = next((r for r in runs if "no honeypot" in r.tool), None)
    if without is not None and without.wall_s > 0:
        cost = base.wall_s / without.wall_s - 1
        cpu = base.cpu_s / without.cpu_s - 1 if without.cpu_s > 0 else 0.0
        verdicts.append(
            verdict(
                f"honeypot scoring: full default audit {base.wall_s:.2f}s with, {without.wall_s:.2f}s "
                f"without = {cost:+.1%} wall, {cpu:+.1%} CPU (target <= +5%)",
                cost <= 0.05,
            )
        )

    # Same-host pile-up: one host with more open DICOM ports than --per-host (a PACS on 104,
    # 11112, 4242, ...). Exposes connection-slot starvation between endpoints of one host.
    pile_host, pile_ports = "127.78.0.1", list(range(FARM_PORT, FARM_PORT + 6))
    pile: list[subprocess.Popen[bytes]] = []
    try:
        for port in pile_ports:
            pile.extend(start_farm(pile_host, 1, 1, port=port).procs)
        spec = f"{pile_ports[0]}-{pile_ports[-1]}"
        pr = [*PACSRADAR, "scan", pile_host, "-p", spec, "--no-default-ports", *PR_COMMON]
        variants = [
            ("pacsradar (CLI defaults, --per-host 4)", pr, parse_pacsradar),
            ("pacsradar --per-host 16", [*pr, "--per-host", "16"], parse_pacsradar),
            (
                "nmap -sT --script +dicom-ping",
                [NMAP, "-n", "-Pn", "-sT", "-p", spec, "--script", "+dicom-ping", pile_host],
                parse_nmap,
            ),
        ]
        pile_runs = _time_variants(
            "mixed-pileup", variants, hosts=1, endpoints=len(pile_ports), args=args, work=work
        )
    finally:
        Farm(pile).stop()
    print_table(
        f"same-host pile-up: {len(pile_ports)} DICOM SCPs on {pile_host} ports {spec}",
        pile_runs,
        pile_runs[0],
    )
    ok = pile_runs[0].extra.get("dicom_endpoints", 0) == len(pile_ports)
    verdicts.append(
        verdict(
            f"pile-up: pacsradar defaults found {pile_runs[0].extra.get('dicom_endpoints', 0)} of "
            f"{len(pile_ports)} SCPs on one host in {pile_runs[0].wall_s:.1f}s",
            ok,
        )
    )
    return {
        "peers": peers,
        "ports": ports,
        "runs": [asdict(r) for r in runs],
        "pileup_runs": [asdict(r) for r in pile_runs],
        "verdicts": verdicts,
    }


def echoscu_xargs(hosts_file: Path, parallel: int) -> list[str]:
    """DCMTK echoscu once per farm address, ``parallel`` at a time (5 s ACSE/connect timeouts)."""
    return [
        "xargs",
        "-a",
        str(hosts_file),
        "-I{}",
        "-P",
        str(parallel),
        ECHOSCU,
        "-to",
        "5",
        "-ta",
        "5",
        "{}",
        str(FARM_PORT),
    ]


def phase_farm(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from pacsradar.config import DEFAULT_DICOM_PORTS

    n = args.hosts
    first = "127.20.0.1"
    addrs = farm_addresses(first, n)
    hosts_file = work / "farm-hosts.txt"
    hosts_file.write_text("\n".join(addrs) + "\n")
    target = f"{addrs[0]}-{addrs[-1]}"
    verdicts: list[str] = []
    stray = foreign_listeners(addrs[0], [p for p in DEFAULT_DICOM_PORTS if p != FARM_PORT])
    if stray or port_open(addrs[0], FARM_PORT):
        print(f"\nfarm: WARNING ports {stray or [FARM_PORT]} already open on {addrs[0]} (foreign listener)")
    t0 = time.monotonic()
    farm = start_farm(first, n, args.procs)
    print(
        f"\nfarm: {n} SCPs on {target}:{FARM_PORT}, {args.procs} asyncio server processes, "
        f"started in {time.monotonic() - t0:.1f}s"
    )
    runs: list[Run] = []
    try:
        pr = [*PACSRADAR, "scan", target, "-p", str(FARM_PORT), *PR_COMMON]
        has_no_default = (
            "--no-default-ports"
            in subprocess.run(
                [*PACSRADAR, "scan", "--help"],
                capture_output=True,
                text=True,
                env={**os.environ, "COLUMNS": "200"},
            ).stdout
        )
        d = len(set(DEFAULT_DICOM_PORTS) | {FARM_PORT})
        variants: list[tuple[str, list[str], int, str]] = [
            (f"pacsradar CLI defaults ({d} ports/host)", pr, n * d, "pr"),
        ]
        if has_no_default:
            variants += [
                ("pacsradar --no-default-ports (1 port/host)", [*pr, "--no-default-ports"], n, "pr"),
                (
                    "pacsradar --no-default-ports --rate 0",
                    [*pr, "--no-default-ports", "--rate", "0"],
                    n,
                    "pr",
                ),
            ]
        variants += [
            (
                "nmap -sT --script dicom-ping",
                [
                    NMAP,
                    "-n",
                    "-Pn",
                    "-sT",
                    "-p",
                    str(FARM_PORT),
                    "--script",
                    "dicom-ping",
                    "-iL",
                    str(hosts_file),
                ],
                n,
                "nmap",
            ),
            *(
                (name, echoscu_xargs(hosts_file, parallel), n, "xargs")
                for name, parallel in (
                    ("echoscu loop, sequential", 1),
                    ("echoscu, xargs -P 2", 2),
                    ("echoscu, xargs -P 8", 8),
                )
            ),
            (
                "pynetdicom associate+C-ECHO, sequential",
                [sys.executable, str(BENCH / "pynetdicom_echo.py"), str(hosts_file), str(FARM_PORT)],
                n,
                "pnd",
            ),
            (
                "pynetdicom associate+C-ECHO, 8 threads",
                [
                    sys.executable,
                    str(BENCH / "pynetdicom_echo.py"),
                    str(hosts_file),
                    str(FARM_PORT),
                    "--threads",
                    "8",
                ],
                n,
                "pnd",
            ),
        ]
        for name, argv, endpoints, kind in variants:
            best: Run | None = None
            for _ in range(args.repeat):
                run, out = run_tool(
                    Run("farm", name, "", n, endpoints),
                    argv,
                    timeout=args.timeout,
                    workdir=work,
                    server_pids=farm.pids,
                )
                if kind == "pr":
                    parse_pacsradar(run, out)
                elif kind == "nmap":
                    parse_nmap(run, out)
                elif kind == "xargs":
                    run.found = (
                        f"{n} echo OK" if run.returncode == 0 else f"some failed (xargs rc {run.returncode})"
                    )
                else:
                    text = out.read_text().strip()
                    run.found = text.replace("ok=", "").replace(" failed=", " ok / failed ") or "no output"
                if best is None or run.wall_s < best.wall_s:
                    best = run
            assert best is not None
            runs.append(best)
    finally:
        farm.stop()
    base = runs[0]
    print_table(f"farm: {n} DICOM SCPs (hosts/s = {n} addresses / wall)", runs, base)
    nm = next((r for r in runs if r.tool.startswith("nmap")), None)
    if nm:
        for r in runs:
            if r.tool.startswith("pacsradar"):
                verdicts.append(
                    verdict(
                        f"farm: {r.tool}: {r.hosts_per_s:.1f} hosts/s vs nmap {nm.hosts_per_s:.1f} "
                        f"(ratio {r.hosts_per_s / nm.hosts_per_s:.2f}, target >= 1)",
                        r.hosts_per_s >= nm.hosts_per_s,
                    )
                )
    print(
        "  server CPU s per run (all farm processes): "
        + ", ".join(f"{r.tool.split(' (')[0]}={r.server_cpu_s}" for r in runs)
    )
    return {"hosts": n, "procs": args.procs, "runs": [asdict(r) for r in runs], "verdicts": verdicts}


def phase_sweep(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    net = ipaddress.ip_network(args.sweep_cidr)
    if not net.subnet_of(ipaddress.ip_network("127.0.0.0/8")):  # type: ignore[arg-type]
        raise SystemExit("sweep CIDR must be inside 127.0.0.0/8")
    from pacsradar.config import DEFAULT_DICOM_PORTS

    ports = sorted(set(DEFAULT_DICOM_PORTS) | {FARM_PORT})
    probe = str(net.network_address + net.num_addresses - 2)
    stray = foreign_listeners(probe, ports)
    if stray:
        print(
            f"\nsweep: WARNING ports {stray} are open on {probe}: a foreign 0.0.0.0 listener "
            "would make every address 'open'; results are not comparable"
        )
    live = min(16, net.num_addresses)
    step = max(1, net.num_addresses // live)
    first = str(net.network_address + 1)
    farm = start_farm(first, live, 1, step=step)
    n = net.num_addresses
    print(
        f"\nsweep: {args.sweep_cidr} ({n:,} hosts), {live} live SCPs inside (every {step}th address), "
        f"timeout {args.sweep_timeout:.0f}s"
    )
    runs: list[Run] = []
    verdicts: list[str] = []
    try:
        pr = [*PACSRADAR, "scan", args.sweep_cidr, "-p", str(FARM_PORT), "--allow-large-scope", *PR_COMMON]
        variants = [(f"pacsradar CLI defaults ({len(ports)} ports/host)", pr, len(ports))]
        if args.sweep_extra:
            variants += [
                ("pacsradar --no-default-ports (1 port/host)", [*pr, "--no-default-ports"], 1),
                ("pacsradar --no-default-ports --rate 0", [*pr, "--no-default-ports", "--rate", "0"], 1),
            ]
        for name, argv, per_host in variants:
            run, out = run_tool(
                Run("sweep", name, "", n, n * per_host),
                argv,
                timeout=args.sweep_timeout,
                workdir=work,
                sample_rss=True,
            )
            report = parse_pacsradar(run, out)
            done = report.get("stats", {}).get("endpoints_done", 0)
            run.extra["endpoints_per_s"] = round(done / run.wall_s, 1) if run.wall_s else 0
            if run.timed_out and done:
                run.extra["extrapolated_full_wall_s"] = round(run.wall_s * run.endpoints / done, 1)
                run.notes.append(f"interrupted after {done:,} of {run.endpoints:,} endpoints")
            runs.append(run)
        if args.sweep_nmap:
            nrun, nout = run_tool(
                Run("sweep", "nmap -sT (no script; 1 port/host)", "", n, n),
                [NMAP, "-n", "-Pn", "-sT", "-p", str(FARM_PORT), args.sweep_cidr],
                timeout=args.sweep_timeout,
                workdir=work,
            )
            parse_nmap(nrun, nout)
            runs.append(nrun)
    finally:
        farm.stop()
    print_table(f"sweep: {args.sweep_cidr} x {len(ports)} ports (mostly closed)", runs, runs[0])
    for r in runs:
        if r.tool.startswith("pacsradar"):
            print(
                f"  {r.tool}: {r.extra.get('endpoints_per_s')} endpoints/s; RSS (s, MB) "
                f"{r.extra.get('rss_timeline_s_mb', [])[-3:]}"
            )
            for note in r.notes:
                print(
                    f"    note: {note}; full run extrapolates to ~{r.extra.get('extrapolated_full_wall_s')}s"
                )
    r0 = runs[0]
    verdicts.append(
        verdict(f"sweep: peak RSS {r0.peak_rss_mb:.0f} MB (target <= 300 MB)", r0.peak_rss_mb <= 300)
    )
    full = r0.extra.get("extrapolated_full_wall_s", r0.wall_s)
    verdicts.append(
        verdict(
            f"sweep: wall {full:.0f}s for the whole scope (goal: a couple of minutes, <= 180s)",
            not r0.timed_out and r0.wall_s <= 180,
        )
    )
    return {"cidr": args.sweep_cidr, "live": live, "runs": [asdict(r) for r in runs], "verdicts": verdicts}


# --------------------------------------------------------------------------------------------
def environment() -> dict[str, Any]:
    def version(argv: list[str]) -> str:
        with contextlib.suppress(Exception):
            out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        return "n/a"

    from pacsradar import __version__

    return {
        "python": platform.python_version(),
        "pacsradar": __version__,
        "pacsradar_cmd": PACSRADAR,
        "nmap": version([NMAP, "--version"]),
        "echoscu": version([ECHOSCU, "--version"]),
        "cpus": os.cpu_count(),
        "load1": os.getloadavg()[0],
    }


@contextlib.contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pacsradar-bench-dicom-"))
    try:
        yield path
    finally:
        if keep:
            print(f"\n(kept tool outputs in {path})")
        else:
            shutil.rmtree(path, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("phase", nargs="?", default="all", choices=("mixed", "farm", "sweep", "all"))
    ap.add_argument("--hosts", type=int, default=1000, help="farm size (distinct 127.20.x.y addresses)")
    ap.add_argument("--procs", type=int, default=4, help="farm server processes")
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool; the fastest is kept")
    ap.add_argument("--timeout", type=float, default=300, help="per tool run, mixed and farm (s)")
    ap.add_argument("--sweep-cidr", default="127.30.0.0/16")
    ap.add_argument("--sweep-timeout", type=float, default=600, help="(s); then SIGINT, partial stats")
    ap.add_argument("--sweep-nmap", action="store_true", help="also time nmap -sT over the sweep")
    ap.add_argument(
        "--sweep-extra",
        action="store_true",
        help="also pacsradar --no-default-ports (with and without --rate 0)",
    )
    ap.add_argument("--keep", action="store_true", help="keep raw tool outputs")
    args = ap.parse_args(argv)
    # Time pacsradar as installed, with byte code: a worktree run with PYTHONDONTWRITEBYTECODE
    # would compile every module on every start (out-of-tree cache, nothing in src/).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ.setdefault("PYTHONPYCACHEPREFIX", str(RESULTS / "pycache"))
    if not 1 <= args.hosts <= 65_000:
        ap.error("--hosts must be 1..65000")
    phases = ("mixed", "farm", "sweep") if args.phase == "all" else (args.phase,)
    results: dict[str, Any] = {
        "bench": "dicom",
        "started_at": datetime.now(UTC).isoformat(),
        "environment": environment(),
        "args": vars(args),
    }
    print(
        f"pacsradar DICOM bench: {', '.join(phases)}; {results['environment']['cpus']} CPUs, "
        f"load {results['environment']['load1']:.2f}"
    )
    with _workdir(args.keep) as work:
        for name in phases:
            t0 = time.monotonic()
            fn = {"mixed": phase_mixed, "farm": phase_farm, "sweep": phase_sweep}[name]
            try:
                results[name] = fn(args, work)
            except KeyboardInterrupt:
                results[name] = {"error": "interrupted"}
                raise
            results[name]["phase_wall_s"] = round(time.monotonic() - t0, 1)
    results["finished_at"] = datetime.now(UTC).isoformat()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"dicom-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{'-'.join(phases)}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nJSON: {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
