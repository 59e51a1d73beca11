"""A deliberately exposed Query/Retrieve SCP on pynetdicom, for tests and ``pacsradar demo``.

It shows what a badly configured archive looks like from the network (any AE title accepted,
C-FIND open, retrieve and storage contexts negotiated) while staying harmless: it answers
queries about synthetic data only, refuses every retrieve and discards every store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import AE, StoragePresentationContexts, evt

from pacsradar.lab.query import QueryIndex, QueryLevelError
from pacsradar.lab.synthetic import LabSummary, summarise

__all__ = [
    "FIND_CANCEL",
    "FIND_PENDING",
    "GET_REFUSED",
    "MOVE_DESTINATION_UNKNOWN",
    "STORE_OUT_OF_RESOURCES",
    "ExposedPacs",
    "silence_pynetdicom",
]

# DIMSE status codes (PS3.4 Annex C.4 and B.2.3, PS3.7 Annex C).
FIND_PENDING = 0xFF00
FIND_CANCEL = 0xFE00
FIND_BAD_IDENTIFIER = 0xA900  # "Identifier does not match SOP Class" (PS3.4 §C.4.1.1.4)
MOVE_DESTINATION_UNKNOWN = 0xA801  # PS3.4 §C.4.2.1.5
GET_REFUSED = 0xA702  # "Out of resources - unable to perform sub-operations" (§C.4.3.1.4)
STORE_OUT_OF_RESOURCES = 0xA700  # PS3.4 §B.2.3

# SOP Class UIDs, PS3.6 Annex A (Verification: PS3.4 Annex A; Q/R models: PS3.4 §C.6).
Verification = UID("1.2.840.10008.1.1")
PatientRootQueryRetrieveInformationModelFind = UID("1.2.840.10008.5.1.4.1.2.1.1")
PatientRootQueryRetrieveInformationModelMove = UID("1.2.840.10008.5.1.4.1.2.1.2")
PatientRootQueryRetrieveInformationModelGet = UID("1.2.840.10008.5.1.4.1.2.1.3")
StudyRootQueryRetrieveInformationModelFind = UID("1.2.840.10008.5.1.4.1.2.2.1")
StudyRootQueryRetrieveInformationModelMove = UID("1.2.840.10008.5.1.4.1.2.2.2")
StudyRootQueryRetrieveInformationModelGet = UID("1.2.840.10008.5.1.4.1.2.2.3")

_FIND_MODELS = {
    PatientRootQueryRetrieveInformationModelFind: "PATIENT",
    StudyRootQueryRetrieveInformationModelFind: "STUDY",
}
_RETRIEVE = (
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelMove,
    PatientRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelGet,
)


def silence_pynetdicom() -> None:
    """Mute pynetdicom's logger: at INFO/DEBUG it prints whole identifiers, i.e. PHI.

    Deliberately process-wide and not undone: HACKING.md rule 1 forbids PHI in any log.
    """
    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL + 1)


class ExposedPacs:
    """A Q/R SCP that leaks (synthetic) patient data to anyone who asks.

    ``require_called_aet`` and ``allowed_calling`` turn on pynetdicom's association checks,
    which reject with A-ASSOCIATE-RJ result 1 (rejected-permanent), source 1 (service-user),
    reason 7 (called AE title not recognised) or 3 (calling AE title not recognised),
    PS3.8 §9.3.4. ``allow_store`` accepts the storage contexts at negotiation, so STORE looks
    open, yet every C-STORE is answered 0xA700 and nothing is kept.
    ``user_identity_response`` accepts any User Identity (PS3.7 §D.3.3.7) and returns a
    server response when one is requested (pynetdicom does so for types 3-5 only).
    """

    def __init__(
        self,
        datasets: Iterable[Dataset],
        host: str = "127.0.0.1",
        port: int = 0,
        ae_title: str = "ANY-SCP",
        *,
        require_called_aet: bool = False,
        allowed_calling: set[str] | None = None,
        allow_find: bool = True,
        allow_move_get: bool = True,
        allow_store: bool = False,
        user_identity_response: bool = False,
        max_associations: int = 64,
        quiet: bool = True,
    ) -> None:
        materialised = list(datasets)
        self.summary: LabSummary = summarise(materialised)
        self.host = host
        self.ae_title = ae_title
        self._requested_port = port
        self._index = QueryIndex(materialised)
        self._allow_find = allow_find
        self._allow_move_get = allow_move_get
        self._allow_store = allow_store
        self._user_identity_response = user_identity_response
        self._quiet = quiet
        self._require_called_aet = require_called_aet
        self._allowed_calling = sorted(allowed_calling) if allowed_calling is not None else []
        self._max_associations = max_associations
        self._ae: Any = None
        self._server: Any = None
        self._port: int | None = None
        self._lock = threading.Lock()
        #: Number of C-STORE requests refused (never their content). Handy for tests.
        self.stores_refused = 0
        #: Number of C-FIND requests that were cancelled by the peer (PS3.7 §9.3.2.3).
        self.finds_cancelled = 0

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("ExposedPacs is not running")
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def _make_ae(self) -> Any:
        ae = AE(ae_title=self.ae_title)
        ae.maximum_associations = self._max_associations
        ae.require_called_aet = self._require_called_aet
        ae.require_calling_aet = self._allowed_calling
        # Bounded timeouts so a stalled peer cannot pin a thread for long.
        ae.acse_timeout = 10
        ae.dimse_timeout = 10
        ae.network_timeout = 30
        ae.add_supported_context(Verification)
        if self._allow_find:
            for sop_class in _FIND_MODELS:
                ae.add_supported_context(sop_class)
        if self._allow_move_get:
            for sop_class in _RETRIEVE:
                ae.add_supported_context(sop_class)
        if self._allow_store:
            for cx in StoragePresentationContexts:
                if cx.abstract_syntax is not None:
                    ae.add_supported_context(cx.abstract_syntax)
        return ae

    def start(self) -> int:
        """Start serving in background threads; return the bound port."""
        if self._server is not None:
            return self.port
        if self._quiet:
            silence_pynetdicom()
        handlers: list[Any] = [
            (evt.EVT_C_FIND, self._on_find),
            (evt.EVT_C_MOVE, self._on_move),
            (evt.EVT_C_GET, self._on_get),
            (evt.EVT_C_STORE, self._on_store),
        ]
        if self._user_identity_response:
            handlers.append((evt.EVT_USER_ID, self._on_user_id))
        self._ae = self._make_ae()
        self._server = self._ae.start_server(
            (self.host, self._requested_port), block=False, evt_handlers=handlers
        )
        self._port = int(self._server.server_address[1])
        return self._port

    def stop(self, timeout: float = 10.0) -> None:
        """Abort open associations, close the listening socket and wait for the threads."""
        ae, self._ae, self._server = self._ae, None, None
        self._port = None
        if ae is None:
            return
        # Let associations still open end on their own first (briefly): pynetdicom's shutdown
        # aborts them, and an abort of one still awaiting its A-ASSOCIATE-RQ (Sta2, PS3.8
        # 9.2) raises InvalidEventError in its reactor thread and leaks the socket.
        settle = time.monotonic() + min(3.0, timeout)
        while ae.active_associations and time.monotonic() < settle:
            time.sleep(0.05)
        ae.shutdown()
        deadline = time.monotonic() + timeout
        for assoc in list(ae.active_associations):
            assoc.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> ExposedPacs:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- DIMSE handlers (run on pynetdicom's association threads) ---------------------------

    def _on_find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        model = _FIND_MODELS.get(event.request.AffectedSOPClassUID)
        try:
            if model is None:
                raise QueryLevelError("unsupported information model")
            identifier: Dataset = event.identifier
            for response in self._index.find(identifier, model):
                # C-CANCEL-FIND-RQ handling (PS3.4 §C.4.1.3.1): stop with status Cancel.
                if event.is_cancelled:
                    with self._lock:
                        self.finds_cancelled += 1
                    yield FIND_CANCEL, None
                    return
                yield FIND_PENDING, response
        except Exception:
            yield FIND_BAD_IDENTIFIER, None
            return
        yield 0x0000, None

    def _on_move(self, event: Any) -> Iterator[Any]:
        # Yielding (None, None) makes pynetdicom answer 0xA801 "Move Destination unknown"
        # (PS3.4 §C.4.2.1.5): the lab never sends images anywhere.
        yield None, None

    def _on_get(self, event: Any) -> Iterator[Any]:
        # One announced sub-operation, then a refusal: the final C-GET-RSP carries 0xA702 and
        # no C-STORE sub-operation is ever attempted (PS3.4 §C.4.3.3).
        yield 1
        yield GET_REFUSED, None

    def _on_store(self, event: Any) -> int:
        # The data set is never decoded (event.dataset is lazy) nor kept.
        with self._lock:
            self.stores_refused += 1
        return STORE_OUT_OF_RESOURCES

    def _on_user_id(self, event: Any) -> tuple[bool, bytes | None]:
        return True, b"PACSRADAR-LAB"
