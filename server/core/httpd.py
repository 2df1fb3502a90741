"""A tiny loopback HTTP/1.1 server for the fake platforms (payment sandbox, fake WeChat API).

Plain asyncio, HTTP/1.1 keep-alive (a connection serves requests until the client asks
`Connection: close`, the handler answers with it, or the server closes): enough for httpx,
requests and browsers, no global app registry, so several fakes can run in one process. A
client with a connection pool (the SMS and WeChat clients) reuses its connections, as it
would against the real platform, so a benchmark measures the client and not TCP set-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    target: str  # path + query, as sent
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True, slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]
_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class HttpServer:
    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.base_url = ""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._server = await asyncio.start_server(self._serve, host, port)
        bound = self._server.sockets[0].getsockname()
        self.base_url = f"http://{bound[0]}:{bound[1]}"
        return self.base_url

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._open):  # idle keep-alive connections end with the server
                writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)
            self._server = None

    async def _read(self, reader: asyncio.StreamReader) -> Request | None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if length > MAX_BODY:
            return None
        body = await reader.readexactly(length) if length else b""
        parts = urlsplit(target)
        return Request(
            method.upper(), target, parts.path, dict(parse_qsl(parts.query)), headers, body
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        try:
            while await self._answer(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass  # the client went away between or during requests
        finally:
            self._open.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read one request and write its response; True if the connection stays open."""
        request = await self._read(reader)
        if request is None:
            response = Response(413, b"too large")
        else:
            try:
                response = await self._handler(request)
            except Exception:  # a sandbox bug must show up as a 500, not a hang
                log.exception("fake platform handler failed")
                response = Response(500, b'{"code":"SYSTEM_ERROR","message":"sandbox"}')
        keep = (
            request is not None
            and request.headers.get("connection", "").lower() != "close"
            and response.headers.get("Connection", "").lower() != "close"
        )
        head = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Status')}"]
        headers = {
            "Content-Length": str(len(response.body)),
            "Connection": "keep-alive" if keep else "close",
        }
        headers.update(response.headers)
        head += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("utf-8") + response.body)
        await writer.drain()
        return keep
