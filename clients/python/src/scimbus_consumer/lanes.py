"""Per-key serial execution: work items with the same key run one after another, in the
order they were submitted; different keys run concurrently."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

Work = Callable[[], Awaitable[Any]]


class KeyedLanes:
    def __init__(self) -> None:
        self._lanes: dict[Hashable, deque[tuple[Work, asyncio.Future[Any]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._lanes)

    def submit(self, key: Hashable, work: Work) -> asyncio.Future[Any]:
        """Queue `work` behind the key's earlier items; the future gets its result."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        lane = self._lanes.get(key)
        if lane is None:
            lane = deque()
            self._lanes[key] = lane
            task = asyncio.create_task(self._run(key, lane))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        lane.append((work, future))
        return future

    async def _run(self, key: Hashable, lane: deque[tuple[Work, asyncio.Future[Any]]]) -> None:
        try:
            while lane:
                work, future = lane[0]
                try:
                    result = await work()
                except asyncio.CancelledError:
                    raise
                except BaseException as exc:  # noqa: BLE001 - handed to whoever awaits the future
                    if not future.done():
                        future.set_exception(exc)
                else:
                    if not future.done():
                        future.set_result(result)
                lane.popleft()
        finally:
            if self._lanes.get(key) is lane:
                del self._lanes[key]
            for _, future in lane:
                future.cancel()

    async def drain(self, timeout: float) -> bool:
        """Wait until every lane is empty; cancel what is left after `timeout` seconds.
        Returns True when everything finished."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        return not pending
