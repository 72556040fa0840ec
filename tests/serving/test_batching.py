"""`transformer.batching.Coalescing`: concurrent requests share predictor calls, each gets its
own rows back, a lone request goes out at once, and a failure reaches every request it held."""

from __future__ import annotations

import asyncio

import numpy as np

from bukva.contract import LABEL_LOGITS, UPPERCASE_LOGIT
from transformer.batching import Coalescing
from transformer.client import MODEL_VERSION, PredictorUnavailable


class GatedPredictor:
    """Answers each call once `gate` is open (open from the start unless `gated`); logits
    encode the image (its mean) and geometry. `in_flight` is set when a call arrives."""

    def __init__(self, fail: bool = False, gated: bool = False):
        self.fail, self.calls = fail, []
        self.gate, self.in_flight = asyncio.Event(), asyncio.Event()
        if not gated:
            self.gate.set()

    async def infer(self, batch, geometry=None):
        self.calls.append((len(batch), None if geometry is None else geometry.copy()))
        self.in_flight.set()
        await self.gate.wait()
        if self.fail:
            raise PredictorUnavailable("predictor down")
        means = batch.reshape(len(batch), -1).mean(axis=1)
        label = np.repeat(means[:, None], 43, axis=1).astype(np.float32)
        case = geometry[:, :1] if geometry is not None else np.full((len(batch), 1), -1.0)
        return {LABEL_LOGITS: label, UPPERCASE_LOGIT: case.astype(np.float32), MODEL_VERSION: "7"}

    async def versions(self):
        return ["7"]

    async def close(self):
        pass


def images(n: int, value: float) -> tuple[np.ndarray, np.ndarray]:
    batch = np.full((n, 1, 28, 28), value, np.float32)
    return batch, np.full((n, 5), value, np.float32)


def test_concurrent_requests_share_a_call_and_get_their_own_rows() -> None:
    async def scenario():
        predictor = GatedPredictor(gated=True)
        client = Coalescing(predictor)
        first = asyncio.create_task(client.infer(*images(1, 0.1)))
        await predictor.in_flight.wait()  # the first call is in flight: the next ones queue
        started, all_queued = [], asyncio.Event()

        async def request(batch, geometry):
            started.append(batch)
            if len(started) == 3:
                all_queued.set()  # infer() queues this one too before it first yields
            return await client.infer(batch, geometry)

        rest = [asyncio.create_task(request(*images(n, v))) for n, v in ((2, 0.2), (1, 0.3))]
        rest.append(asyncio.create_task(request(images(1, 0.4)[0], None)))
        await all_queued.wait()
        predictor.gate.set()  # the first call returns; the three queued go out as one
        return predictor, await first, await asyncio.gather(*rest)

    predictor, first, rest = asyncio.run(scenario())
    assert [n for n, _ in predictor.calls] == [1, 4]  # the lone one at once, then the three
    assert first[LABEL_LOGITS].shape == (1, 43) and first[MODEL_VERSION] == "7"
    for answer, (n, value) in zip(rest, ((2, 0.2), (1, 0.3), (1, 0.4)), strict=True):
        assert answer[LABEL_LOGITS].shape == (n, 43)
        np.testing.assert_allclose(answer[LABEL_LOGITS], value, rtol=1e-6)
        assert answer[MODEL_VERSION] == "7"
    # a request without geometry stays "unknown" (zeros) in the shared call
    np.testing.assert_array_equal(predictor.calls[1][1][-1], np.zeros(5, np.float32))
    assert rest[2][UPPERCASE_LOGIT][0, 0] == 0.0


def test_a_failed_shared_call_fails_each_request_in_it() -> None:
    async def scenario():
        client = Coalescing(GatedPredictor(fail=True))
        calls = [asyncio.create_task(client.infer(*images(1, v))) for v in (0.1, 0.2, 0.3)]
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(scenario())
    assert all(isinstance(r, PredictorUnavailable) for r in results)


def test_large_queues_are_split_at_max_images() -> None:
    async def scenario():
        predictor = GatedPredictor()
        client = Coalescing(predictor, max_images=6)
        calls = [asyncio.create_task(client.infer(*images(3, 0.5))) for _ in range(4)]
        await asyncio.gather(*calls)
        return predictor

    # four requests of 3 images arrive together: two calls of 6, never one of 12
    assert [n for n, _ in asyncio.run(scenario()).calls] == [6, 6]
