"""Concurrent requests share predictor calls, without waiting for one another.

`Coalescing` wraps a `PredictorClient`. A call made while no predictor call is in flight goes
out at once (one event-loop turn later: no measurable latency at concurrency 1). Calls made
while one is in flight queue up; when it returns, everything queued (up to `max_images`) goes
out as ONE predictor call and each caller gets its own rows back. Under load the predictor
then pays its per-call cost (gRPC or HTTP, KServe, the runtime's call) once per batch instead
of once per request, and the transformer sends one message instead of many.

A failure of a shared call fails every request in it, with the same error a lone call gets.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np

from bukva.contract import GEOMETRY_SIZE
from transformer.client import PredictorClient


@dataclass
class _Call:
    batch: np.ndarray
    geometry: np.ndarray | None
    answer: asyncio.Future = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _merged(calls: list[_Call]) -> tuple[np.ndarray, np.ndarray | None]:
    """One batch and geometry for several calls (a call without geometry: unknown, zeros)."""
    if len(calls) == 1:
        return calls[0].batch, calls[0].geometry
    batch = np.concatenate([c.batch for c in calls])
    if all(c.geometry is None for c in calls):
        return batch, None
    geometry = [
        c.geometry if c.geometry is not None else np.zeros((len(c.batch), GEOMETRY_SIZE), "f4")
        for c in calls
    ]
    return batch, np.concatenate(geometry)


class Coalescing:
    """A `PredictorClient` whose concurrent calls are merged while one is in flight."""

    def __init__(self, client: PredictorClient, max_images: int = 64):
        self.client, self.max_images = client, max_images
        self._queue: list[_Call] = []
        self._sending = False
        self._task: asyncio.Task | None = None  # held: the loop keeps only weak references

    async def infer(
        self, batch: np.ndarray, geometry: np.ndarray | None = None
    ) -> dict[str, np.ndarray | str]:
        call = _Call(batch, geometry)
        self._queue.append(call)
        if not self._sending:
            self._sending = True
            self._task = asyncio.get_running_loop().create_task(self._send_queued())
        return await call.answer

    async def _send_queued(self) -> None:
        """Send what is queued, one merged call at a time, until the queue is empty."""
        try:
            while self._queue:
                calls, images = [], 0
                while self._queue and (
                    not calls or images + len(self._queue[0].batch) <= self.max_images
                ):
                    calls.append(self._queue.pop(0))
                    images += len(calls[-1].batch)
                await self._send(calls)
        finally:
            self._sending = False

    async def _send(self, calls: list[_Call]) -> None:
        try:
            answer = await self.client.infer(*_merged(calls))
        except Exception as exc:  # every caller gets the error its own call would have got
            for call in calls:
                if not call.answer.done():
                    call.answer.set_exception(exc)
            return
        start = 0
        for call in calls:
            end = start + len(call.batch)
            if not call.answer.done():  # the caller may have gone (client disconnected)
                call.answer.set_result(
                    {k: v[start:end] if isinstance(v, np.ndarray) else v for k, v in answer.items()}
                )
            start = end

    async def versions(self) -> list[str]:
        return await self.client.versions()

    async def close(self) -> None:
        await self.client.close()
