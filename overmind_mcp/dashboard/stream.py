"""Server-sent event streams that end when the dashboard closes, fed by a producer task of the response's own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

import anyio
from anyio.streams.memory import MemoryObjectSendStream
from sse_starlette import EventSourceResponse, ServerSentEvent

Producer = Callable[[MemoryObjectSendStream[ServerSentEvent]], Awaitable[None]]

PING_S = 15.0
SEND_TIMEOUT_S = 30.0
"""A client that takes no data for this long is cut off: its stream is not kept open for nothing."""


class EventStream(EventSourceResponse):
    """An event stream whose events a producer sends, one at a time (a slow client holds the producer back).

    The producer runs in the response's own task group, so it ends with the response (the client
    went away) and the response ends with it (the page has nothing more to follow).
    """

    def __init__(self, producer: Producer, closing: anyio.Event) -> None:
        send, receive = anyio.create_memory_object_stream[ServerSentEvent]()
        super().__init__(
            receive,
            data_sender_callable=partial(_produce, producer, send),
            ping=PING_S,
            send_timeout=SEND_TIMEOUT_S,
        )
        self._closing = closing

    async def _listen_for_exit_signal(self) -> None:  # type: ignore[override]
        # sse-starlette would poll uvicorn's exit flag twice a second from a task of its own;
        # the dashboard says when the server closes.
        await self._closing.wait()


async def _produce(producer: Producer, send: MemoryObjectSendStream[ServerSentEvent]) -> None:
    async with send:
        await producer(send)
