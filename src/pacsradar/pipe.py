"""``--import -``: another scanner's output read from a pipe and audited as its lines arrive.

Internet-scale users discover with masscan or zmap and audit what answered. Waiting for the
discovery to end before the first audit wastes its whole duration, so:

* **A reader thread, a bounded queue.** :class:`ImportStream` reads the file descriptor in a
  daemon thread (a pipe, a terminal or a regular file alike: ``os.read`` returns what is there),
  parses each line (:class:`pacsradar.targets.imports.LineImport`) and hands the entries to the
  event loop in batches through an :class:`asyncio.Queue` of :data:`QUEUE_BATCHES` batches.
  When the audit falls behind, the queue fills, the thread blocks, the pipe fills and the
  discovering scanner waits: memory stays bounded, nothing is read to the end first.
* **The same rules as a file import.** Every host and port is validated; exclusions win (each
  arriving address is checked); a port-less entry (zmap's default output) is scanned on the
  plan's ports; entries are deduplicated, also against the plan's own targets; more hosts
  than the scope limit need ``--allow-large-scope`` (the stream is then cut, with a warning).
* **The plan keeps what arrived.** :meth:`StreamedEndpoints.plan` is the scan's plan with the
  arrived entries as its imports: the store writes it every few seconds and at the end
  (:class:`pacsradar.store.StoreObserver`), so ``--resume`` restores exactly what was read.
* **A bad line is a warning**, naming its line number, and the stream goes on (a discovery
  that ran for an hour is not thrown away for one garbled line); a host name is refused (a
  pipe of addresses cannot be resolved and re-checked against exclusions in order: put names
  in ``-iL``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
from collections import deque
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Final

from pacsradar.errors import TargetError
from pacsradar.targets.imports import MAX_STREAM_LINE, LineImport

if TYPE_CHECKING:
    from pacsradar.plan import ScanPlan
    from pacsradar.targets import ImportEntry

#: Batches the reader may be ahead of the audit (a batch is what one ``os.read`` returned).
QUEUE_BATCHES: Final = 64
#: Bytes one read takes from the pipe (a pipe buffer is 64 KiB on Linux).
READ_BYTES: Final = 64 * 1024
#: Bad lines named one by one; later ones are only counted.
SHOWN_BAD_LINES: Final = 5


class ImportStream:
    """Lines of a file descriptor parsed in a daemon thread, handed over in bounded batches."""

    def __init__(self, fd: int, *, name: str = "standard input", batches: int = QUEUE_BATCHES) -> None:
        self.fd = fd
        self.name = name
        self.batches = batches
        self.warnings: list[str] = []
        self.bad_lines = 0
        self.lines = 0
        self._queue: asyncio.Queue[list[ImportEntry] | None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        #: batches read from the pipe but not handed out when the scan stopped
        self._unread: list[list[ImportEntry]] = []

    def start(self) -> None:
        """Start reading (call it on the loop that will :meth:`get`)."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(self.batches)
        self._thread = threading.Thread(target=self._run, name="pacsradar-import-stream", daemon=True)
        self._thread.start()

    async def get(self) -> list[ImportEntry] | None:
        """The next batch of entries; ``None`` once the stream ended (every later call too)."""
        assert self._queue is not None, "start() first"
        batch = await self._queue.get()
        if batch is None:
            self._queue.put_nowait(None)  # the next waiter learns it too (room: we took one)
        return batch

    @property
    def backlog(self) -> int:
        """Batches read from the pipe and not yet handed out."""
        return 0 if self._queue is None else self._queue.qsize()

    @property
    def full(self) -> bool:
        """Whether the queue is full: the reader waits, and so does the scanner writing the pipe."""
        return self._queue is not None and self._queue.full()

    def close(self) -> None:
        """Stop handing batches over (the scan stopped); the thread ends at its next line."""
        self._closed.set()
        if self._queue is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake)

    def join(self, timeout: float) -> bool:
        """Wait (in a thread: it blocks) for the reader to end after :meth:`close` or EOF."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _wake(self) -> None:
        # Make room for the end mark (the scan wants no more entries); what was read stays
        # known (take_unread), so the stored plan keeps every line that arrived.
        self._unread.extend(self._drain())
        assert self._queue is not None
        self._queue.put_nowait(None)

    def _drain(self) -> list[list[ImportEntry]]:
        out: list[list[ImportEntry]] = []
        assert self._queue is not None
        while True:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return out
            if item is not None:
                out.append(item)

    def take_unread(self) -> list[list[ImportEntry]]:
        """After :meth:`close`: the batches read but never handed out (none while running)."""
        if not self._closed.is_set() or self._queue is None:
            return []
        out, self._unread = [*self._unread, *self._drain()], []
        self._queue.put_nowait(None)  # the end mark stays for any lane still waiting
        return out

    # -- the reader thread ------------------------------------------------------------------

    def _run(self) -> None:
        parser = LineImport()
        tail = b""
        overlong = False
        try:
            while not self._closed.is_set():
                try:
                    chunk = os.read(self.fd, READ_BYTES)
                except InterruptedError:
                    continue
                except OSError as exc:
                    self.warnings.append(f"cannot read {self.name}: {exc.strerror or type(exc).__name__}")
                    break
                if not chunk:
                    break
                lines = (tail + chunk).split(b"\n")
                tail = lines.pop()
                if overlong and lines:
                    lines[0], overlong = b"x" * (MAX_STREAM_LINE + 1), False  # its end: one bad line
                if len(tail) > MAX_STREAM_LINE:
                    tail, overlong = b"", True  # keep no more of it; its newline ends the skip
                entries = self._parse(parser, lines)
                if entries and not self._put(entries):
                    return
            if tail and not self._closed.is_set():
                entries = self._parse(parser, [tail])
                if entries and not self._put(entries):
                    return
        finally:
            self._put(None)

    def _parse(self, parser: LineImport, lines: list[bytes]) -> list[ImportEntry]:
        out: list[ImportEntry] = []
        for raw in lines:
            self.lines += 1
            try:
                out.extend(parser.feed(raw.decode("utf-8", errors="replace")))
            except TargetError as exc:
                self.bad_lines += 1
                if self.bad_lines <= SHOWN_BAD_LINES:
                    self.warnings.append(f"{self.name} {exc}; line skipped")
        return out

    def _put(self, item: list[ImportEntry] | None) -> bool:
        """Hand ``item`` to the loop, waiting while the queue is full; False once closed."""
        loop, queue = self._loop, self._queue
        if loop is None or queue is None:
            return False
        if (item is not None and self._closed.is_set()) or loop.is_closed():
            return False
        put = queue.put(item)
        try:
            future = asyncio.run_coroutine_threadsafe(put, loop)
        except RuntimeError:  # the loop closed meanwhile: the scan is over
            put.close()
            return False
        while True:
            try:
                future.result(timeout=0.5)
                return True
            except concurrent.futures.TimeoutError:
                if self._closed.is_set():
                    future.cancel()
                    return False
            except (concurrent.futures.CancelledError, RuntimeError):
                return False

    def summary(self) -> list[str]:
        """Warnings for the user: bad lines (the first few by number, then how many)."""
        out = list(self.warnings)
        if self.bad_lines > SHOWN_BAD_LINES:
            out.append(f"{self.name}: {self.bad_lines:,} lines could not be read as imports and were skipped")
        return out


class StreamedEndpoints:
    """The engine's endpoints: the plan's own first, then each streamed entry as it arrives.

    Implements the engine's endpoint source (``next_endpoint``): many lanes may wait on it at
    once. ``done`` (a resume's finished endpoints) are skipped; :meth:`plan` is the plan with
    every arrived entry among its imports.
    """

    def __init__(
        self,
        plan: ScanPlan,
        first: Iterable[tuple[str, int]],
        stream: ImportStream,
        *,
        done: Container[tuple[str, int]] = frozenset(),
        max_hosts: int | None = None,
    ) -> None:
        from pacsradar.plan import canonical_host, is_ip

        self._canonical = canonical_host
        self._is_ip = is_ip
        self.base = plan
        self.stream = stream
        self.done = done
        self.max_hosts = max_hosts
        self._first: Iterator[tuple[str, int]] | None = iter(first)
        self._pending: deque[tuple[str, int]] = deque()
        self._scope = plan.scope()
        self._ports = plan.ports()
        self._port_set = frozenset(self._ports)
        self._pinned = frozenset(self._scope.pinned)
        #: entries that arrived, in order (the plan's new imports)
        self.arrived: dict[ImportEntry, None] = {}
        self._hosts: set[str] = set()
        self.excluded = 0
        self.names = 0
        self.cut = False
        self._ended = False
        self._written = -1
        #: told each imported port before its first endpoint is handed out (Engine.add_import_port)
        self.on_port: Callable[[int], None] | None = None

    async def next_endpoint(self) -> tuple[str, int] | None:
        if self._first is not None:
            item = next(self._first, None)
            if item is not None:
                return item
            self._first = None
        while True:
            if self._pending:
                return self._pending.popleft()
            if self._ended:
                return None
            batch = await self.stream.get()
            if batch is None:
                self._ended = True
                continue
            self._accept(batch)

    def _accept(self, batch: list[ImportEntry]) -> None:
        scope, arrived = self._scope, self.arrived
        for raw_host, port in batch:
            host = self._canonical(raw_host)
            if (host, port) in arrived:
                continue
            if not self._is_ip(host):
                self.names += 1  # host names are not read from a pipe (module docstring)
                continue
            if scope.is_excluded(host):
                self.excluded += 1
                continue
            if host not in self._hosts:
                if self.max_hosts is not None and len(self._hosts) >= self.max_hosts:
                    if not self.cut:
                        self.cut = True
                        self.stream.close()
                    continue
                self._hosts.add(host)
            arrived[(host, port)] = None
            if port is not None and self.on_port is not None:
                self.on_port(port)
            ports = self._ports if port is None else (port,)
            targeted = host in scope
            for p in ports:
                if targeted and (p in self._port_set or (host, p) in self._pinned):
                    continue  # the plan's own targets cover it
                if port is not None and (host, None) in arrived and p in self._port_set:
                    continue  # a port-less entry for this host already brought it
                if port is None and (host, p) in arrived:
                    continue
                if (host, p) in self.done:
                    continue
                self._pending.append((host, p))

    def plan(self) -> ScanPlan:
        """The scan's plan with every arrived entry among its imports (what --resume restores);
        after a stop, also the lines read but not yet handed out."""
        self._absorb_unread()
        known = dict.fromkeys(self.base.imports)
        known.update(self.arrived)
        return replace(self.base, imports=tuple(known))

    def plan_update(self) -> tuple[str, str] | None:
        """``(options key, plan JSON)`` when entries arrived since the last call, else None."""
        from pacsradar.plan import PLAN_KEY

        self._absorb_unread()
        if len(self.arrived) == self._written:
            return None
        self._written = len(self.arrived)
        return PLAN_KEY, self.plan().to_json()

    def _absorb_unread(self) -> None:
        for batch in self.stream.take_unread():
            self._accept(batch)

    def warnings(self) -> list[str]:
        """What the user must hear about the stream, once it ended."""
        name = self.stream.name
        out = self.stream.summary()
        if self.names:
            out.append(
                f"{name}: {self.names:,} host names skipped (a pipe takes addresses; put names in -iL)"
            )
        if self.excluded:
            out.append(f"{name}: {self.excluded:,} excluded entries skipped")
        if self.cut:
            out.append(
                f"{name}: stopped reading at {len(self._hosts):,} hosts, the scope limit; "
                "pass --allow-large-scope to audit more"
            )
        return out


__all__ = ["QUEUE_BATCHES", "ImportStream", "StreamedEndpoints"]
