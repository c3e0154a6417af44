"""Small asyncio helpers shared by every layer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import TypeVar

T = TypeVar("T")


def as_async_iter(source: AsyncIterable[T] | Iterable[T]) -> AsyncIterator[T]:
    """Iterate a plain or async iterable asynchronously.

    An async iterable is iterated as it is (no wrapper: one generator step less per item on the
    audio hot paths). A plain iterable yields to the event loop between items, so feeding a whole
    file from memory never starves the tasks that consume it (decoders, sockets, timers).
    """
    if isinstance(source, AsyncIterable):
        return aiter(source)
    return _yielding(source)


async def _yielding(source: Iterable[T]) -> AsyncIterator[T]:
    for item in source:
        yield item
        await asyncio.sleep(0)
