"""Per-endpoint state shared by the DICOM checks, which run in registry order."""

from __future__ import annotations

import contextlib
import secrets
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from pacsradar.config import ScanOptions
from pacsradar.dicom.client import (
    AssociationKind,
    AssociationResult,
    DicomClient,
    ProposedContext,
    UserIdentity,
)
from pacsradar.dicom.facts import AssociationFacts, FindRecorder, association_facts, recorder_for
from pacsradar.dicom.fingerprint import Fingerprint
from pacsradar.dicom.sop import probe_contexts
from pacsradar.errors import PeerClosed
from pacsradar.models import Endpoint
from pacsradar.net import Net


def bogus_identity() -> UserIdentity:
    """A made-up username and passcode (type 2) that no server can know; positive response asked."""
    return UserIdentity(
        username=b"pacsradar-" + secrets.token_hex(6).encode(),
        passcode=secrets.token_hex(12).encode(),
    )


def random_aet(prefix: str = "PR") -> str:
    """A 16-character AE title (PS3.5 Table 6.2-1 'AE' VR) no server can have configured."""
    return (prefix + secrets.token_hex(8).upper())[:16]


@dataclass(frozen=True)
class QueryFacts:
    """What C-FIND exposed; counts and keywords only (see DICOM-QUERY-PHI)."""

    level: str
    records: int
    patients: int
    images: int | None
    phi_keywords: tuple[str, ...]
    year_min: int | None
    year_max: int | None
    truncated: bool
    status: int | None
    #: canned records without unique keys, returned whatever is asked (checks/placeholder.py)
    placeholder: bool = False

    @property
    def exposes_records(self) -> bool:
        """Records that describe holdings came back (placeholder answers describe none)."""
        return self.records > 0 and not self.placeholder


@dataclass
class DicomContext:
    endpoint: Endpoint
    options: ScanOptions
    net: Net
    stack: contextlib.AsyncExitStack
    reachable: bool = True
    tls: ssl.SSLContext | None = None
    #: "dicom" or "dicom-tls" once an A-ASSOCIATE answer came back; "http"/"tls"/... otherwise
    service: str | None = None
    #: the pre-check association with random called and calling AE titles
    first: AssociationResult | None = None
    #: the pre-check's answer when it also carried a bogus User Identity (PS3.7 D.3.3.7)
    identity_probe: AssociationResult | None = None
    #: the association that was accepted (random titles, or a guessed called AE)
    accepted: AssociationResult | None = None
    session: DicomClient | None = None
    fingerprint: Fingerprint | None = None
    guessed_aet: str | None = None
    query: QueryFacts | None = None
    #: every association answer and C-FIND shape, as facts (pacsradar.dicom.facts), in order
    answers: list[AssociationFacts] = field(default_factory=list)
    finds: list[FindRecorder] = field(default_factory=list)
    #: status of the intrusive C-MOVE of a random study to a random AE (dicom.retrieve)
    move_status: int | None = None
    notes: list[str] = field(default_factory=list)
    _finding_endpoint: Endpoint | None = field(default=None, repr=False)

    @property
    def product(self) -> str | None:
        return self.fingerprint.label if self.fingerprint else None

    @property
    def protocol(self) -> str:
        return "dicom-tls" if self.tls is not None else "dicom"

    def endpoint_for_findings(self) -> Endpoint:
        # One Endpoint per protocol, shared by this endpoint's findings (they are frozen).
        cached = self._finding_endpoint
        if cached is None or cached.protocol != self.protocol:
            cached = Endpoint(host=self.endpoint.host, port=self.endpoint.port, protocol=self.protocol)  # type: ignore[arg-type]
            self._finding_endpoint = cached
        return cached

    @contextlib.asynccontextmanager
    async def association(
        self,
        called_aet: str,
        calling_aet: str,
        contexts: Sequence[ProposedContext] | None = None,
        *,
        user_identity: UserIdentity | None = None,
    ) -> AsyncIterator[DicomClient]:
        """A fresh connection and association; released (or aborted) and closed on exit.

        If the peer answered only after the line-based nudge (see
        :meth:`DicomClient._association_reply`) and accepted, that connection carries stray
        bytes: it is closed and the association opened again, patiently and without a nudge.
        """
        limits = self.options.limits
        for patient in (False, True):
            async with self.net.connect_pdu(self.endpoint.host, self.endpoint.port, tls=self.tls) as stream:
                client = DicomClient(
                    stream,
                    max_pdu_bytes=limits.max_pdu_bytes,
                    assoc_timeout=max(limits.assoc_timeout, limits.read_timeout)
                    if patient
                    else limits.assoc_timeout,
                    nudge=not patient,
                    silent_listen=limits.silent_listen,
                )
                client.find_observer = self._record_find
                try:
                    await client.associate(
                        called_aet,
                        calling_aet,
                        contexts if contexts is not None else probe_contexts(),
                        user_identity=user_identity,
                    )
                except PeerClosed:
                    # Closed right after our nudge: a DICOM stack may drop a connection on the
                    # unrecognised PDU it began (PS3.8 §9.2) before answering the RQ it read
                    # first. Ask once more, patiently and without a nudge.
                    if patient or not client.nudged:
                        raise
                    continue
                if (
                    not patient
                    and client.nudged
                    and client.assoc is not None
                    and (client.assoc.kind is AssociationKind.ABORTED)
                ):
                    continue  # possibly its answer to our stray bytes: ask again, no nudge
                if client.assoc is not None and len(self.answers) < 64:
                    self.answers.append(
                        association_facts(client.assoc, identity_offered=user_identity is not None)
                    )
                accepted = client.assoc is not None and client.assoc.kind is AssociationKind.ACCEPTED
                if accepted and client.nudged:
                    continue  # closes this connection without a release: it is not clean
                try:
                    yield client
                except BaseException:
                    # Cancelled (Ctrl-C, deadline) or failed mid-operation: A-ABORT (PS3.8
                    # §7.3) without waiting for an answer, never an A-RELEASE handshake that
                    # could wait a read timeout on a peer that is not listening.
                    if accepted:
                        await client.abort()
                    raise
                if accepted:
                    await client.release()
                return

    def _record_find(self, identifier: bytes, transfer_syntax: str) -> FindRecorder:
        recorder = recorder_for(identifier, transfer_syntax, self.options.hasher)
        if len(self.finds) < 16:
            self.finds.append(recorder)
        return recorder

    async def open_session(
        self, called_aet: str, calling_aet: str, *, user_identity: UserIdentity | None = None
    ) -> DicomClient:
        """An association kept open for the following checks (echo, query, retrieve).

        Only an accepted association stays open (until the auditor's exit stack closes); a
        rejected or aborted one is closed at once and returned only for its answer.
        """
        cm = self.association(called_aet, calling_aet, user_identity=user_identity)
        client = await cm.__aenter__()
        if client.assoc is not None and client.assoc.kind is AssociationKind.ACCEPTED:
            self.stack.push_async_exit(cm)
        else:
            await cm.__aexit__(None, None, None)
        return client
