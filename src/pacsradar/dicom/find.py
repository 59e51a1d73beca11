"""One bounded C-FIND (PS3.4 C.4.1) on an accepted association, shared by the archive query
(``dicom.query``) and the worklist / UPS probe (``dicom.worklist``).

Every pending identifier goes to the caller's ``add`` as soon as it arrives (so the caller can
reduce it to counts and keyed hashes and drop it); at the record bound we send C-CANCEL
(PS3.7 §9.3.2.3) and drain what the peer still sends. A peer that ignores the cancel gets
A-ABORT, reported as a final status of None.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pacsradar.dicom.client import IMPLICIT_VR_LE, DicomClient
from pacsradar.errors import ProtocolError, ReadTimeout

#: C-FIND Pending statuses (PS3.4 Table C.4-1)
PENDING = (0xFF00, 0xFF01)
#: responses read after C-CANCEL before we give up and abort
CANCEL_DRAIN = 64


def implicit_vr(session: DicomClient, sop: str) -> bool:
    """Whether the context accepted for ``sop`` is Implicit VR Little Endian (the default)."""
    ts = session.assoc.accepted[sop][1] if session.assoc else IMPLICIT_VR_LE
    return ts == IMPLICIT_VR_LE


async def bounded_find(
    session: DicomClient,
    sop: str,
    identifier: bytes,
    add: Callable[[bytes, bool], None],
    records: Callable[[], int],
    limit: int,
) -> tuple[int | None, bool]:
    """One C-FIND of ``identifier`` on ``sop``; returns (final status, truncated).

    ``add(dataset, implicit)`` gets each pending identifier; once ``records()`` reaches ``limit``
    the query is cancelled. :class:`~pacsradar.errors.PeerAborted` and other scan errors while
    reading the answers propagate to the caller."""
    implicit = implicit_vr(session, sop)
    message_id = session.next_message_id()
    final_status: int | None = None
    truncated = False
    responses = session.find(sop, identifier, message_id=message_id)
    try:
        async for rsp in responses:
            if rsp.status in PENDING:
                if rsp.dataset:
                    add(rsp.dataset, implicit)
                if records() >= limit:
                    truncated = True
                    await session.cancel(sop, message_id)
                    break
            else:
                final_status = rsp.status
    finally:
        await responses.aclose()
    if truncated:
        final_status = await drain_after_cancel(session)
    return final_status, truncated


async def drain_after_cancel(session: DicomClient) -> int | None:
    """Read what the peer still sends after C-CANCEL; a peer that ignores it gets A-ABORT."""
    try:
        async with asyncio.timeout(2.0):
            for _ in range(CANCEL_DRAIN):
                rsp = await session.receive()
                if rsp.status not in PENDING:
                    return rsp.status
    except (TimeoutError, ReadTimeout, ProtocolError):
        pass
    await session.abort()
    return None  # the peer ignored C-CANCEL (or broke): the association was aborted
