"""Baseline for the farm benchmark: plain pynetdicom ``AE.associate`` + ``send_c_echo`` + release.

``python bench/pynetdicom_echo.py HOSTS_FILE PORT [--threads N]`` prints ``ok=<n> failed=<m>``.
Sequential by default; ``--threads`` runs N associations at once (pynetdicom is thread-based).
Loopback only (the bench passes 127.x addresses; anything else is refused).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("hosts_file", type=Path)
    ap.add_argument("port", type=int)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    hosts = [h.strip() for h in args.hosts_file.read_text().splitlines() if h.strip()]
    for h in hosts:
        if not ipaddress.ip_address(h).is_loopback:
            raise SystemExit(f"refusing non-loopback address {h}")
    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL + 1)
    ae = AE(ae_title="PRBENCH")
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 5
    ae.connection_timeout = 5

    def one(host: str) -> bool:
        assoc = ae.associate(host, args.port, ae_title="ANY-SCP")
        if not assoc.is_established:
            return False
        status = assoc.send_c_echo()
        assoc.release()
        return bool(status) and int(status.Status) == 0

    if args.threads <= 1:
        results = [one(h) for h in hosts]
    else:
        with ThreadPoolExecutor(args.threads) as pool:
            results = list(pool.map(one, hosts))
    ok = sum(results)
    print(f"ok={ok} failed={len(results) - ok}", flush=True)


if __name__ == "__main__":
    main()
