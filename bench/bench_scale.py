"""Scale benchmarks (issue 14): sparse sweeps at their rate floor, Dask workers, CPU per endpoint.

    python bench/bench_scale.py [sparse|workers|client|loopback|all] [--no-masscan] [--no-kill]

Cases, each run side by side in one invocation, ratios printed:

* sparse: a sparse "internet" in two network namespaces (tests/lab/netns.py; root): 64 DICOM
  hosts (80 endpoints on 104 and 11112, bench/farm_scp.py inside NS_NET), 32 hosts with closed
  ports, every other address of 198.18.0.0/18 silent. ``pacsradar scan 198.18.0.0/18 -p
  104,11112 --only dicom`` with default options against its rate floor (endpoints / rate + one
  connect timeout). Goal: all 80 found in <= 1.25 x the floor.
* workers: ``pacsradar scan 198.18.0.0/16 -p 104,11112 --only dicom --workers 2 --rate 20000``
  (131,072 endpoints) against its floor, with the peak RSS of the whole process tree; again with
  one worker SIGKILLed a third of the way through (each of the 80 reported exactly once); and
  masscan --rate 20000 --wait 3 on the same scope (installed by this bench with apt-get if it
  is missing; SYN only, no DICOM). Goal: <= 2 x the floor, <= 300 MB.
* client: the whole benchmark range 198.18.0.0/15 (262,144 endpoints) with ``--workers 2
  --rate 20000``: the client's peak RSS does not grow with the scope. Goal: < 150 MB.
* loopback: ``pacsradar scan 127.2.0.0/16 -p 11112 --only dicom --rate 0`` (every endpoint
  answers RST at once) against ``nmap -n -Pn -sT -p 11112`` on the same scope, and
  ``--workers 2`` against one process, cluster start-up included. Goals: one process <= 4 x
  nmap's wall time; --workers 2 >= 1.6 x faster than one process.

Network rule: loopback, or addresses inside the two namespaces this bench creates and always
removes; nmap with -n. The CPU of this machine may be shared: the load average before each run
is printed with it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
for _p in (REPO / "tests", REPO / "src"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from lab.netns import SparseNet, netns_skip_reason  # noqa: E402

PY = sys.executable
NMAP = "/usr/bin/nmap"
FARM = REPO / "bench" / "farm_scp.py"
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src"), "NO_COLOR": "1"}
CONNECT_TIMEOUT = 3.0

# The sparse lab: 64 SCP hosts on 11112 (one per /24 of the /18), 16 of them also on 104,
# and 32 hosts that own their address but listen on nothing (RST).
SCP_11112 = [f"198.18.{i}.10" for i in range(64)]
SCP_104 = [f"198.18.{4 * i}.10" for i in range(16)]
CLOSED = [f"198.18.{2 * i + 1}.77" for i in range(32)]
EXPECTED = {(h, 11112) for h in SCP_11112} | {(h, 104) for h in SCP_104}


@dataclass
class Run:
    name: str
    argv: list[str]
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_tree_mb: float = 0.0
    peak_main_mb: float = 0.0
    returncode: int | None = None
    load1: float = 0.0
    found: int | None = None
    notes: list[str] = field(default_factory=list)
    out: Path | None = None


def run_tree(
    run: Run,
    workdir: Path,
    *,
    timeout: float = 900,
    during: Callable[[psutil.Process, float], None] | None = None,
) -> Run:
    """Run, sampling the RSS and CPU of the whole process tree every 50 ms; wall from the clock.

    CPU is the larger of wait4's (the main process and the children it reaped) and the sum of
    each process's last sampled CPU time: local Dask workers fork from a forkserver that the
    main process never reaps, so wait4 alone would miss them.
    """
    tag = run.name.replace(" ", "-").replace("/", "_")
    run.out = workdir / f"{tag}.out"
    run.load1 = round(os.getloadavg()[0], 2)
    with run.out.open("wb") as out, (workdir / f"{tag}.err").open("wb") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(run.argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env=ENV, start_new_session=True)
        ps = psutil.Process(proc.pid)
        cpu_seen: dict[int, float] = {}
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            now = time.monotonic() - t0
            with contextlib.suppress(psutil.Error):
                tree = [ps, *ps.children(recursive=True)]
                rss = 0
                for p in tree:
                    with contextlib.suppress(psutil.Error):
                        rss += p.memory_info().rss
                        times = p.cpu_times()
                        cpu_seen[p.pid] = times.user + times.system
                run.peak_tree_mb = max(run.peak_tree_mb, rss / 2**20)
                run.peak_main_mb = max(run.peak_main_mb, ps.memory_info().rss / 2**20)
            if during is not None:
                during(ps, now)
            if now > timeout:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                run.notes.append("timed out")
            time.sleep(0.05)
        run.wall_s = round(time.monotonic() - t0, 2)
    run.returncode = os.waitstatus_to_exitcode(status)
    run.cpu_s = round(max(usage.ru_utime + usage.ru_stime, sum(cpu_seen.values())), 2)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    return run


def pacsradar_found(run: Run) -> Counter[tuple[str, int]]:
    assert run.out is not None
    try:
        report = json.loads(run.out.read_text())
    except ValueError:
        run.notes.append("no JSON report")
        return Counter()
    seen = Counter((r["endpoint"]["host"], r["endpoint"]["port"]) for r in report["results"])
    run.found = len(seen)
    stats = report.get("stats", {})
    run.notes.append(
        f"done {stats.get('endpoints_done')}, closed {stats.get('endpoints_closed')}, "
        f"filtered {stats.get('endpoints_filtered')}"
    )
    return seen


def row(run: Run, floor: float | None = None, base: Run | None = None) -> str:
    ratio = f"{run.wall_s / floor:5.2f}x floor" if floor else ""
    vs = f"{run.wall_s / base.wall_s:5.2f}x {base.name}" if base is not None and base.wall_s else ""
    return (
        f"  {run.name:<34} {run.wall_s:8.2f} s  cpu {run.cpu_s:7.2f} s  tree {run.peak_tree_mb:6.0f} MB"
        f"  main {run.peak_main_mb:5.0f} MB  found {run.found!s:>5}  load {run.load1:4.1f}  {ratio} {vs}"
        f"  {'; '.join(run.notes)}"
    )


#: The interpreter that runs pacsradar (--python): a venv made by the README's set-up has only
#: pacsradar's dependencies; a shared interpreter may add modules that Dask imports when present
#: (NumPy, which distributed.protocol.utils uses when it can: about 13 MB per process).
SCAN_PY = [PY]


def scan_argv(net: SparseNet | None, *args: str) -> list[str]:
    argv = [SCAN_PY[0], "-m", "pacsradar", "scan", *args, "-f", "json", "--no-progress"]
    return net.argv(net.scan_ns, argv) if net is not None else argv


@contextlib.contextmanager
def sparse_lab() -> Any:
    reason = netns_skip_reason()
    if reason:
        raise SystemExit(f"sparse cases skipped: {reason}")
    with SparseNet([*SCP_11112, *CLOSED]) as net:
        for port, hosts, step in ((11112, SCP_11112, 256), (104, SCP_104, 1024)):
            net.start(net.net_ns, [PY, str(FARM), "--first", hosts[0], "--count", str(len(hosts)),
                                   "--step", str(step), "--port", str(port)], ready=b"READY")
        # Enough ephemeral ports and a deep SYN backlog for 20,000 connects per second.
        net.sysctl(net.scan_ns, "net.ipv4.ip_local_port_range", "1024 65000")
        yield net


def case_sparse(work: Path) -> list[str]:
    lines = ["== sparse: 198.18.0.0/18 (32,768 endpoints, 80 DICOM), default options (--rate 1000)"]
    endpoints = 16384 * 2
    floor = endpoints / 1000 + CONNECT_TIMEOUT
    with sparse_lab() as net:
        run = run_tree(Run("pacsradar defaults", scan_argv(net, "198.18.0.0/18", "-p", "104,11112",
                                                             "--only", "dicom", "--db",
                                                             f"sqlite:///{work}/s18.db")), work)
        seen = pacsradar_found(run)
        ok = set(seen) == EXPECTED and set(seen.values()) == {1}
        lines.append(row(run, floor))
        lines.append(f"  floor {floor:.1f} s; goal <= {1.25 * floor:.1f} s and all 80 found: "
                     f"{'MET' if ok and run.wall_s <= 1.25 * floor else 'NOT MET'}")
    return lines


def _dask_workers(ps: psutil.Process) -> list[psutil.Process]:
    """The local Dask worker processes under ``ps``: spawned ones run ``spawn_main``; forked
    ones are the children of the forkserver (and keep its command line)."""
    found = []
    for p in ps.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            line = " ".join(p.cmdline())
            forked = "forkserver" in line and "forkserver" in " ".join(p.parent().cmdline())
            if forked or "spawn_main" in line:
                found.append(p)
    return found


def _kill_a_worker_at(db: Path, rows: int) -> Callable[[psutil.Process, float], None]:
    state: dict[str, Any] = {"done": False, "next": 0.0}

    def during(ps: psutil.Process, now: float) -> None:
        if state["done"] or now < state["next"]:
            return
        state["next"] = now + 0.2
        try:
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)) as c:
                count = c.execute("select (select count(*) from scan_results)"
                                  " + (select coalesce(sum(count), 0) from dead_groups)").fetchone()[0]
        except sqlite3.Error:
            return
        if count < rows:
            return
        workers = _dask_workers(ps)
        if workers:
            workers[0].send_signal(signal.SIGKILL)
            state["done"] = True
            state["at"] = round(now, 1)

    during.state = state  # type: ignore[attr-defined]
    return during


def masscan_bin() -> str | None:
    found = shutil.which("masscan")
    if found:
        return found
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(["apt-get", "install", "-y", "-qq", "masscan"], check=True, capture_output=True,
                       timeout=300, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return shutil.which("masscan")


def case_workers(work: Path, *, kill: bool, masscan: bool) -> list[str]:
    lines = ["== workers: 198.18.0.0/16 (131,072 endpoints, 80 DICOM), --workers 2 --rate 20000"]
    endpoints = 65536 * 2
    floor = endpoints / 20000 + CONNECT_TIMEOUT
    with sparse_lab() as net:
        db = work / "w16.db"
        args = ["198.18.0.0/16", "-p", "104,11112", "--only", "dicom", "--workers", "2", "--rate", "20000"]
        run = run_tree(Run("pacsradar --workers 2", scan_argv(net, *args, "--db", f"sqlite:///{db}")), work)
        seen = pacsradar_found(run)
        ok = set(seen) == EXPECTED and set(seen.values()) == {1}
        lines.append(row(run, floor))
        met = ok and run.wall_s <= 2 * floor and run.peak_tree_mb <= 300
        lines.append(f"  floor {floor:.1f} s; goal <= {2 * floor:.1f} s, tree <= 300 MB, all 80 and nothing "
                     f"else: {'MET' if met else 'NOT MET'}")
        if kill:
            db2 = work / "w16k.db"
            during = _kill_a_worker_at(db2, endpoints // 3)
            killed = run_tree(Run("pacsradar --workers 2, 1 killed",
                                  scan_argv(net, *args, "--db", f"sqlite:///{db2}")), work, during=during)
            seen = pacsradar_found(killed)
            state = during.state  # type: ignore[attr-defined]
            killed.notes.append(f"SIGKILL at {state.get('at')} s" if state["done"] else "no worker killed")
            with contextlib.closing(sqlite3.connect(db2)) as c:
                from pacsradar.store.plain import unpack_hosts, unpack_ports

                pairs = c.execute("select host, port from scan_results").fetchall()
                for hosts, ports in c.execute("select hosts, ports from dead_groups"):  # issue 26
                    pairs += zip(unpack_hosts(hosts), unpack_ports(ports), strict=True)
                stored = (len(pairs), len(set(pairs)))
            once = set(seen) == EXPECTED and set(seen.values()) == {1}
            lines.append(row(killed, floor))
            lines.append(f"  killed run: 80 found exactly once: {'MET' if once else 'NOT MET'}; store rows "
                         f"{stored[0]} for {stored[1]} distinct endpoints (of {endpoints})")
        tool = masscan_bin() if masscan else None
        if tool:
            out = work / "masscan.txt"
            m = run_tree(Run("masscan --rate 20000 --wait 3", net.argv(net.scan_ns, [
                tool, "198.18.0.0/16", "-p104,11112", "--rate", "20000", "--wait", "3",
                "--adapter", net._veth[0], "--router-ip", "10.255.0.2", "-oL", str(out)])), work)
            with contextlib.suppress(OSError):
                m.found = sum(1 for line in out.read_text().splitlines() if line.startswith("open"))
            lines.append(row(m, floor, base=run))
        elif masscan:
            lines.append("  masscan: not installable here (apt-get install masscan failed)")
    return lines


def case_loopback(work: Path) -> list[str]:
    lines = ["== loopback: 127.2.0.0/16 -p 11112 (65,536 endpoints, every one RST), --rate 0"]
    args = ["127.2.0.0/16", "-p", "11112", "--only", "dicom", "--rate", "0"]
    nmap = run_tree(Run("nmap -n -Pn -sT", [NMAP, "-n", "-Pn", "-sT", "-p", "11112", "127.2.0.0/16",
                                             "-oG", str(work / "nmap.gnmap")]), work)
    one = run_tree(Run("pacsradar (1 process)", scan_argv(None, *args, "--db", f"sqlite:///{work}/l1.db")),
                   work)
    pacsradar_found(one)
    two = run_tree(Run("pacsradar --workers 2", scan_argv(None, *args, "--workers", "2", "--db",
                                                          f"sqlite:///{work}/l2.db")), work)
    pacsradar_found(two)
    lines += [row(nmap), row(one, base=nmap), row(two, base=one)]
    per = one.cpu_s / 65536 * 1e6
    lines.append(f"  one process: {one.wall_s / nmap.wall_s:.2f}x nmap (goal <= 4x: "
                 f"{'MET' if one.wall_s <= 4 * nmap.wall_s else 'NOT MET'}); {per:.0f} us CPU per endpoint")
    lines.append(f"  --workers 2: {one.wall_s / two.wall_s:.2f}x faster than one process (goal >= 1.6x: "
                 f"{'MET' if one.wall_s >= 1.6 * two.wall_s else 'NOT MET'})")
    if os.geteuid() == 0:  # the SYN gate's raw socket needs root (or CAP_NET_RAW)
        syn = run_tree(Run("pacsradar --gate syn", scan_argv(None, *args, "--gate", "syn", "--db",
                                                             f"sqlite:///{work}/l3.db")), work)
        pacsradar_found(syn)
        syn2 = run_tree(Run("pacsradar --gate syn --workers 2",
                            scan_argv(None, *args, "--gate", "syn", "--workers", "2", "--db",
                                      f"sqlite:///{work}/l4.db")), work)
        pacsradar_found(syn2)
        lines += [row(syn, base=nmap), row(syn2, base=syn)]
        per_syn = syn.cpu_s / 65536 * 1e6
        lines.append(f"  SYN gate: {syn.wall_s / nmap.wall_s:.2f}x nmap, {per_syn:.0f} us CPU per endpoint;"
                     f" --workers 2 {one.wall_s / syn2.wall_s:.2f}x faster than one process "
                     f"on the connect gate, {syn.wall_s / syn2.wall_s:.2f}x than one on the SYN gate")
    return lines


def case_client(work: Path) -> list[str]:
    lines = ["== client: 198.18.0.0/15 (262,144 endpoints, 80 DICOM), --workers 2 --rate 20000"]
    endpoints = 131072 * 2
    floor = endpoints / 20000 + CONNECT_TIMEOUT
    with sparse_lab() as net:
        args = ["198.18.0.0/15", "-p", "104,11112", "--only", "dicom", "--workers", "2", "--rate", "20000",
                "--allow-large-scope"]
        run = run_tree(Run("pacsradar /15 --workers 2", scan_argv(net, *args, "--db",
                                                                 f"sqlite:///{work}/w15.db")), work)
        seen = pacsradar_found(run)
        ok = set(seen) == EXPECTED and set(seen.values()) == {1}
        lines.append(row(run, floor))
        lines.append(f"  client peak {run.peak_main_mb:.0f} MB for twice the /16's endpoints; goal < 150 MB "
                     f"and all 80 found: {'MET' if ok and run.peak_main_mb < 150 else 'NOT MET'}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    cases = ["sparse", "workers", "client", "loopback", "all"]
    ap.add_argument("case", nargs="?", default="all", choices=cases)
    ap.add_argument("--no-masscan", action="store_true")
    ap.add_argument("--no-kill", action="store_true")
    ap.add_argument("--python", default=PY,
                    help="interpreter that runs pacsradar, e.g. a venv's bin/python (README set-up)")
    args = ap.parse_args(argv)
    SCAN_PY[0] = args.python
    probe = subprocess.run([args.python, "-c", "import numpy"], capture_output=True, check=False)
    numpy = probe.returncode == 0
    print(f"bench_scale on {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} "
          "(a shared machine: figures under contention)")
    have = "present" if numpy else "absent"
    print(f"pacsradar runs on {args.python} (NumPy {have}; PYTHONPATH={REPO / 'src'})")
    with tempfile.TemporaryDirectory(prefix="pacsradar-scale-") as tmp:
        work = Path(tmp)
        runs: list[Callable[[], list[str]]] = []
        if args.case in ("loopback", "all"):
            runs.append(lambda: case_loopback(work))
        if args.case in ("sparse", "all"):
            runs.append(lambda: case_sparse(work))
        if args.case in ("workers", "all"):
            runs.append(lambda: case_workers(work, kill=not args.no_kill, masscan=not args.no_masscan))
        if args.case in ("client", "all"):
            runs.append(lambda: case_client(work))
        for run in runs:  # each case's lines as soon as it ends
            print("\n".join(run()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
