"""Issue 26: pacsradar on a dense imaging network, side by side, on 127.0.0.0/8 only.

    python bench/bench_dense.py [store|farm|memory|all] [--hosts 250] [--big 1000] [--repeat 3]
                                [--pg URL] [--keep]

* store: the store's write cost per live host, in-process CPU (``time.process_time``), from the
  results of a real scan of a ``--hosts`` farm (bench/farm_scp.py): the one-endpoint ORM path
  (``Store.record_result``, what a scan used before issue 26) against the batch path
  (``Store.record_results`` on SQLAlchemy, and the sqlite3 writer ``LiteStore`` a scan uses on
  a current SQLite store), plus PostgreSQL with ``--pg``. Every path must write the same rows
  (ids included); the bench checks it. Goal: < 1 ms of CPU per live host.
* farm: the full default DICOM audit of the farm, store on (a current store, as a user's
  second scan finds it) and ``--no-store``, against nmap dicom-ping (one association per host),
  echoscu via xargs -P 8 and a pynetdicom associate + C-ECHO loop (8 threads), in one run;
  wall and CPU, and the ratios to nmap. Goal: store on <= 1.5x nmap's wall time, all found.
* memory: peak RSS (VmHWM) of the store-on audit of ``--hosts`` and of ``--big`` farm SCPs.
  Goal: the big one within 1.3x.

Wall times on a shared machine are noisy: the CPU columns are the steadier comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import bench_dicom as bd  # noqa: E402

FIRST = "127.26.0.1"  # this bench's farm (issue 26); bench_dicom's farm uses 127.20.x
TABLES = (
    "scans",
    "assets",
    "services",
    "scan_results",
    "attempts",
    "findings",
    "finding_events",
    "finding_occurrences",
)


def _farm_report(hosts: int, work: Path) -> Any:
    """A real ScanReport of a ``hosts`` farm (pacsradar --no-store, JSON)."""
    from pacsradar.models import ScanReport

    addrs = bd.farm_addresses(FIRST, hosts)
    farm = bd.start_farm(FIRST, hosts, 2)
    try:
        out = work / "farm-report.json"
        argv = [*bd.PACSRADAR, "scan", f"{addrs[0]}-{addrs[-1]}", "-p", str(bd.FARM_PORT), *bd.PR_COMMON]
        bd.run_tool(
            bd.Run("store", "report", "", hosts, hosts), [*argv, "-o", str(out)], timeout=300, workdir=work
        )
    finally:
        farm.stop()
    data = json.loads(out.read_text())
    data = {k: v for k, v in data.items() if k in ScanReport.model_fields}  # drop the JSON's derived keys
    return ScanReport.model_validate(data)


def _dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            dump = {}
            for t in TABLES:
                rows = conn.execute(text(f"SELECT * FROM {t} ORDER BY 1"))  # noqa: S608
                dump[t] = [tuple(r) for r in rows]
            return dump
    finally:
        engine.dispose()


def _write(writer: Any, report: Any, how: str) -> float:
    """CPU seconds to store ``report`` as a scan does: begin, the results, finish."""
    t0 = time.process_time()
    writer.begin_scan(
        report.scan_id, scope=report.scope, options=dict(report.options), total=len(report.results)
    )
    if how == "one":
        for r in report.results:
            writer.record_result(report.scan_id, r)
    else:
        for i in range(0, len(report.results), 256):
            writer.record_results(report.scan_id, report.results[i : i + 256], fresh=True)
    writer.finish_scan(report)
    return time.process_time() - t0


def phase_store(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from pacsradar.store import Store
    from pacsradar.store.lite import LiteStore

    report = _farm_report(args.hosts, work)
    live = [r for r in report.results if r.reachable]
    rows = sum(len(r.findings) + len(r.attempts) + 1 for r in report.results)
    print(
        f"\nstore: {len(report.results)} results ({len(live)} live hosts), "
        f"{sum(len(r.findings) for r in report.results)} findings, {rows} rows per scan"
    )
    seed = work / "seed.db"
    with Store(f"sqlite:///{seed}") as s:  # current schema; the previous scan, as on a 2nd run
        s.save_report(report.model_copy(update={"scan_id": "previous"}))
    cases: list[tuple[str, Callable[[str], Any], str, str]] = [
        ("ORM, one endpoint per transaction (before)", Store, "one", "sqlite"),
        ("bulk, SQLAlchemy connection (Store.record_results)", Store, "bulk", "sqlite"),
        (
            "bulk, sqlite3 (LiteStore: a scan's writer)",
            lambda u: LiteStore.open(u, Path(u[10:])),
            "bulk",
            "sqlite",
        ),
    ]
    if args.pg:
        cases += [
            ("PostgreSQL: ORM, one endpoint per transaction", Store, "one", "pg"),
            ("PostgreSQL: bulk (Store.record_results)", Store, "bulk", "pg"),
        ]
    results: list[dict[str, Any]] = []
    dumps: dict[str, Any] = {}
    for name, opener, how, backend in cases:
        best = float("inf")
        for i in range(args.repeat):
            if backend == "sqlite":
                db = work / f"{len(results)}-{i}.db"
                shutil.copy(seed, db)
                url = f"sqlite:///{db}"
            else:
                url = _pg_fresh(args.pg, f"b{len(results)}_{i}")
            writer = opener(url)
            try:
                best = min(best, _write(writer, report, how))
            finally:
                writer.close()
        dumps.setdefault(backend, []).append((name, _dump(url)))
        results.append(
            {
                "case": name,
                "cpu_s": round(best, 4),
                "ms_per_live_host": round(1000 * best / max(1, len(live)), 3),
            }
        )
    base = results[0]["cpu_s"]
    print(f"{'case':<56} {'CPU s':>8} {'ms/live host':>13} {'x before':>9}")
    for r in results:
        print(f"{r['case']:<56} {r['cpu_s']:>8.3f} {r['ms_per_live_host']:>13.3f} {r['cpu_s'] / base:>9.3f}")
    same = all(d == group[0][1] for group in dumps.values() for _, d in group)
    print(f"rows identical across paths (ids included): {same}")
    best_bulk = min(r["ms_per_live_host"] for r in results if "bulk, sqlite3" in r["case"])
    verdicts = [bd.verdict(f"store: {best_bulk:.3f} ms CPU per live host (target < 1 ms)", best_bulk < 1.0)]
    return {"cases": results, "rows_identical": same, "verdicts": verdicts}


def _pg_fresh(base_url: str, name: str) -> str:
    """A new database ``name`` next to ``base_url``'s (dropped first if left by a killed run)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            conn.execute(text(f"CREATE DATABASE {name}"))
    finally:
        engine.dispose()
    return base_url.rsplit("/", 1)[0] + "/" + name


def _audit(n: int, work: Path, tag: str, store: Path | None, repeat: int, fmt: str = "json") -> bd.Run:
    addrs = bd.farm_addresses(FIRST, n)
    argv = [
        *bd.PACSRADAR,
        "scan",
        f"{addrs[0]}-{addrs[-1]}",
        "-p",
        str(bd.FARM_PORT),
        "--only",
        "dicom",
        "-f",
        fmt,
        "--no-progress",
    ]
    argv += ["--db", f"sqlite:///{store}"] if store else ["--no-store"]
    best: bd.Run | None = None
    for _ in range(repeat):
        run, out = bd.run_tool(bd.Run("dense", tag, "", n, n), argv, timeout=300, workdir=work)
        bd.parse_pacsradar(run, out)
        if best is None or run.wall_s < best.wall_s:
            best = run
    assert best is not None
    return best


def _current_store(work: Path, name: str, n: int) -> Path:
    """A store as a user's second scan finds it: current schema, the farm scanned once."""
    db = work / name
    _audit(n, work, "warm-up", db, 1)
    return db


def phase_farm(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    n = args.hosts
    addrs = bd.farm_addresses(FIRST, n)
    hosts_file = work / "dense-hosts.txt"
    hosts_file.write_text("\n".join(addrs) + "\n")
    farm = bd.start_farm(FIRST, n, 2)
    runs: list[bd.Run] = []
    try:
        db = _current_store(work, "farm.db", n)
        nmap = [
            bd.NMAP,
            "-n",
            "-Pn",
            "-sT",
            "-p",
            str(bd.FARM_PORT),
            "--script",
            "dicom-ping",
            "-iL",
            str(hosts_file),
        ]
        others: list[tuple[str, list[str], str]] = [
            ("nmap -sT --script dicom-ping", nmap, "nmap"),
            ("echoscu, xargs -P 8", bd.echoscu_xargs(hosts_file, 8), "xargs"),
            (
                "pynetdicom associate+C-ECHO, 8 threads",
                [
                    sys.executable,
                    str(BENCH / "pynetdicom_echo.py"),
                    str(hosts_file),
                    str(bd.FARM_PORT),
                    "--threads",
                    "8",
                ],
                "pnd",
            ),
        ]
        for name, argv, kind in others:
            best: bd.Run | None = None
            for _ in range(args.repeat):
                run, out = bd.run_tool(
                    bd.Run("dense", name, "", n, n), argv, timeout=300, workdir=work, server_pids=farm.pids
                )
                if kind == "nmap":
                    bd.parse_nmap(run, out)
                else:
                    run.found = (
                        out.read_text().strip().replace("ok=", "ok ")
                        if kind == "pnd"
                        else f"rc {run.returncode}"
                    )
                if best is None or run.wall_s < best.wall_s:
                    best = run
            assert best is not None
            runs.append(best)
        runs.append(_audit(n, work, "pacsradar --only dicom, store on (current store)", db, args.repeat))
        runs.append(_audit(n, work, "pacsradar --only dicom --no-store", None, args.repeat))
    finally:
        farm.stop()
    nm = runs[0]
    print(f"\n== dense farm: {n} SCPs on {addrs[0]}-{addrs[-1]}:{bd.FARM_PORT} (best wall of {args.repeat})")
    print(f"{'tool':<52} {'wall s':>7} {'CPU s':>6} {'RSS MB':>7} {'wall/nmap':>9} {'CPU/nmap':>8}  found")
    for r in runs:
        print(
            f"{r.tool:<52} {r.wall_s:>7.2f} {r.cpu_s:>6.2f} {r.peak_rss_mb:>7.1f} "
            f"{r.wall_s / nm.wall_s:>9.2f} {r.cpu_s / max(nm.cpu_s, 0.01):>8.2f}  {r.found}"
        )
    on, off = runs[-2], runs[-1]
    print(f"store cost: {1000 * (on.cpu_s - off.cpu_s) / n:.2f} ms CPU per live host (store on - no-store)")
    verdicts = [
        bd.verdict(
            f"dense: store-on audit {on.wall_s:.2f} s = {on.wall_s / nm.wall_s:.2f}x nmap dicom-ping"
            f" (target <= 1.5x), {on.found}",
            on.wall_s <= 1.5 * nm.wall_s and on.found.startswith(f"{n} hosts"),
        )
    ]
    return {"runs": [bd.asdict(r) for r in runs], "verdicts": verdicts}


def phase_memory(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    out: list[bd.Run] = []
    for n in (args.hosts, args.big):
        farm = bd.start_farm(FIRST, n, 2)
        try:
            db = _current_store(work, f"mem{n}.db", n)
            for fmt in ("json", "table"):
                out.append(_audit(n, work, f"pacsradar store on, -f {fmt}, {n} hosts", db, args.repeat, fmt))
        finally:
            farm.stop()
    small, _, big, _ = out
    print("\n== memory: peak RSS (VmHWM) of the store-on audit")
    for r in out:
        print(f"{r.tool:<40} {r.peak_rss_mb:>7.1f} MB  wall {r.wall_s:.2f} s  CPU {r.cpu_s:.2f} s  {r.found}")
    ratio = big.peak_rss_mb / small.peak_rss_mb
    print(f"-f table: {out[3].peak_rss_mb / out[1].peak_rss_mb:.2f}x")
    verdicts = [
        bd.verdict(
            f"memory: {args.big} hosts / {args.hosts} hosts peak RSS = {ratio:.2f} (target <= 1.3)",
            ratio <= 1.3,
        )
    ]
    return {"runs": [bd.asdict(r) for r in out], "ratio": ratio, "verdicts": verdicts}


def phase_startup(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """pacsradar's own start-up: a DICOM-only scan of one closed loopback port, no store."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the socket is: nothing listens there
    argv = [*bd.PACSRADAR, "scan", "127.0.0.1", "-p", str(port), "--no-default-ports", "--only", "dicom",
            "--no-store", "-f", "json", "--no-progress"]  # fmt: skip
    runs = []
    for _ in range(args.repeat + 1):  # the first run warms the byte-code cache
        run, _out = bd.run_tool(bd.Run("dense", "start-up", "", 1, 1), argv, timeout=120, workdir=work)
        runs.append(run)
    best = min(runs[1:], key=lambda r: r.cpu_s)
    print(f"\n== start-up: closed-port DICOM scan, best of {args.repeat}: CPU {best.cpu_s:.3f} s, "
          f"wall {best.wall_s:.3f} s, RSS {best.peak_rss_mb:.1f} MB")  # fmt: skip
    return {"runs": [bd.asdict(r) for r in runs[1:]], "verdicts": []}


PHASES = {"store": phase_store, "farm": phase_farm, "memory": phase_memory, "startup": phase_startup}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("phase", nargs="?", default="all", choices=("store", "farm", "memory", "startup", "all"))
    ap.add_argument("--hosts", type=int, default=250)
    ap.add_argument("--big", type=int, default=1000, help="memory phase: the larger farm")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--pg", help="a PostgreSQL URL (postgresql+psycopg://...) to add its rows to the store phase"
    )
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ.setdefault("PYTHONPYCACHEPREFIX", str(bd.RESULTS / "pycache"))
    phases = ("store", "startup", "memory", "farm") if args.phase == "all" else (args.phase,)
    results: dict[str, Any] = {"bench": "dense", "environment": bd.environment(), "args": vars(args)}
    print(f"pacsradar dense-network bench (issue 26): {', '.join(phases)}; load {os.getloadavg()[0]:.2f}")
    work = Path(tempfile.mkdtemp(prefix="pacsradar-dense-"))
    try:
        for name in phases:
            results[name] = PHASES[name](args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    bd.RESULTS.mkdir(parents=True, exist_ok=True)
    path = bd.RESULTS / f"dense-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{'-'.join(phases)}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nJSON: {path}; load {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
