"""Anonymous share audits (FTP, SMB, HTTP listings): list, then read only header prefixes.

Each protocol module provides a small synchronous client (``listdir`` and bounded ``read``); the
walk, the bounds (depth, files, bytes per share) and the header audit are shared here. Clients run
in a worker thread so the asyncio engine is never blocked; every socket has a timeout.
"""

from __future__ import annotations

from pacsradar.files.shares.base import Entry, ShareClient, ShareError, walk_share

__all__ = ["Entry", "ShareClient", "ShareError", "walk_share"]
