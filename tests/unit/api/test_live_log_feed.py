"""The live-log feed a server's SSE streams wait on: it wakes on a log's growth and ends when
the server begins to stop, so a stream closes at once instead of holding the stop."""

from __future__ import annotations

import asyncio

from ferrous.api.wiring import _LogFeed
from ferrous.application.signals import JobSignals


async def test_the_feed_wakes_on_growth_and_ends_when_the_server_stops() -> None:
    signals = JobSignals()
    feed = await _LogFeed(signals).subscribe("job-1")
    waiting = asyncio.ensure_future(anext(feed, None))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    signals.log_grew("job-1")
    assert await asyncio.wait_for(waiting, 1) is not None

    waiting = asyncio.ensure_future(anext(feed, None))
    await asyncio.sleep(0.01)
    signals.close()
    async with asyncio.timeout(1):
        await waiting  # the wake-up of the stop itself
        assert await anext(feed, None) is None  # then the feed is over
