"""pynetdicom Verification SCPs on the given ``host:port`` list, for the namespace lab.

Run inside ``NS_NET`` by :meth:`tests.lab.netns.SparseNet.start_scps`:
``python netns_scp.py 198.18.0.10:104,198.18.0.10:11112``. Prints ``READY`` once every server
is bound and exits when its stdin closes (a parent that dies never leaves it behind).
Like a badly configured archive, it accepts any calling and called AE title.
"""

from __future__ import annotations

import logging
import sys


def main() -> int:
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
    servers = []
    for item in sys.argv[1].split(","):
        host, port = item.rsplit(":", 1)
        ae = AE(ae_title="NSLAB")
        ae.add_supported_context(Verification)
        ae.require_called_aet = False
        ae.require_calling_aet = []
        servers.append(ae.start_server((host, int(port)), block=False))
    print("READY", len(servers), flush=True)
    sys.stdin.read()
    for server in servers:
        server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
