"""An asyncio event loop on a background thread, for peers that must outlive one test loop.

The scanner under test may run its own loop (``asyncio.run`` inside the CLI, say), so lab
servers written with asyncio can be hosted here instead of in the test's loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    """``run(coro)`` executes on the background loop; ``close()`` stops and closes it."""

    def __init__(self, name: str = "lab-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self, timeout: float = 10.0) -> None:
        if self.loop.is_closed():
            return
        self.run(self._drain_tasks(), timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        # A task can still be born after the drain: a TLS handshake that was in flight when the
        # server closed completes and its connection callback starts a handler, in any turn of
        # the loop (shutdown_asyncgens turns it too). Drain on this thread until a check made
        # after the last turn finds none: no turn runs between that check and close(), so no
        # task is ever destroyed while pending.
        for _ in range(10):
            self.loop.run_until_complete(self._drain_tasks())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            if not asyncio.all_tasks(self.loop):
                break
        self.loop.close()

    @staticmethod
    async def _drain_tasks(rounds: int = 20) -> None:
        current = asyncio.current_task()
        for _ in range(rounds):
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            if not tasks:
                # One more turn of the loop lets callbacks already scheduled (a completed
                # handshake's connection_made) create their tasks before we look again.
                await asyncio.sleep(0)
                if not [t for t in asyncio.all_tasks() if t is not current]:
                    return
                continue
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
