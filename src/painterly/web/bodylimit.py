"""The request body limit: an ASGI middleware that refuses a body over the limit with 413
while it streams in (before the multipart parser buffers it), and the 413 message and response."""
from __future__ import annotations

from fastapi.responses import JSONResponse


class BodyTooLarge(Exception):
    """The body went over the limit (raised inside the middleware's ``receive``)."""


def too_large_message(limit: int, video_limit: int | None = None) -> str:
    """The 413 message: the limit in MB (and a video job's, when it has its own)."""
    text = f"upload too large: the limit is {limit / 1024 / 1024:.1f} MB per request"
    if video_limit:
        text += f" ({video_limit / 1024 / 1024:.1f} MB for a video job)"
    return text


def too_large_response(limit: int, message: str | None = None) -> JSONResponse:
    """The 413 response; the connection closes (the rest of the body is not read)."""
    return JSONResponse({"detail": message or too_large_message(limit)},
                        status_code=413, headers={"Connection": "close"})


class BodyLimitMiddleware:
    """Refuses request bodies over ``limit`` bytes with 413, in a way clients can read.

    A client that is still sending when the server answers and closes gets a connection reset
    instead of the answer (most HTTP clients report the failed write, not the 413). So the rest
    of an over-limit body is read and thrown away, up to ``drain_limit`` bytes in all, before the
    413 goes out; beyond that the connection is closed at once. A client that sent
    ``Expect: 100-continue`` has not sent its body yet and is answered at once.

    ``path_limits`` gives some paths a larger limit (``{path: (limit, message)}``: the jobs
    endpoint takes video clips); the drain limit grows with it.
    """

    def __init__(self, app, limit: int, drain_limit: int | None = None,
                 path_limits: dict[str, tuple[int, str]] | None = None):
        self.app = app
        self.base_limit = limit
        self.base_drain_limit = drain_limit if drain_limit is not None else 4 * limit
        self.path_limits = path_limits or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        special = self.path_limits.get(scope.get("path", ""))
        if special is None:
            return await self._limited(scope, receive, send, self.base_limit, self.base_drain_limit, None)
        limit, message = special
        drain = max(self.base_drain_limit, limit + self.base_drain_limit)
        return await self._limited(scope, receive, send, limit, drain, message)

    async def _limited(self, scope, receive, send, limit: int, drain_limit: int, message: str | None):
        headers = dict(scope.get("headers", []))
        expects_continue = headers.get(b"expect", b"").lower() == b"100-continue"
        try:
            declared = int(headers[b"content-length"]) if b"content-length" in headers else None
        except ValueError:
            declared = None
        if declared is not None and declared > limit:
            if not expects_continue and declared <= drain_limit:
                await self._drain(receive, 0, drain_limit)
            return await too_large_response(limit, message)(scope, receive, send)

        seen = 0
        more = True
        started = False

        async def limited_receive():
            nonlocal seen, more
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                more = bool(message.get("more_body", False))
                if seen > limit:
                    raise BodyTooLarge()
            elif message["type"] == "http.disconnect":
                more = False
            return message

        async def watched_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            if more:
                await self._drain(receive, seen, drain_limit)
            await too_large_response(limit, message)(scope, receive, send)

    async def _drain(self, receive, seen: int, drain_limit: int) -> None:
        """Read and drop the rest of the body (up to ``drain_limit`` bytes in all)."""
        while seen <= drain_limit:
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return
