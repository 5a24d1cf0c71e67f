"""Streamable HTTP: the same tools for IDEs and shared use, and for children calling back in.

Every request needs a bearer token; one without a valid token gets a bare 401 and learns
nothing else. DNS-rebinding protection (a bad Host gets 421) comes from the SDK for
loopback binds. uvicorn serves the app inside our own task group, so the process's
signals stay ours: they end the supervisor's children before anything else.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

from overmind_mcp.identity import Credentials, bearer, new_token

_UNAUTHORIZED = b'{"error":"unauthorized"}'


class BearerAuth:
    """Refuses every HTTP request whose bearer token the credentials do not know."""

    def __init__(self, app: ASGIApp, credentials: Credentials) -> None:
        self.app = app
        self.credentials = credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            authorization = next(
                (value.decode("latin-1") for name, value in scope["headers"] if name == b"authorization"), None
            )
            if self.credentials.identify(bearer(authorization)) is None:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(_UNAUTHORIZED)).encode()),
                            (b"www-authenticate", b'Bearer realm="overmind"'),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": _UNAUTHORIZED})
                return
        await self.app(scope, receive, send)


def http_app(server: MCPServer, credentials: Credentials, host: str, dashboard: ASGIApp | None = None) -> ASGIApp:
    """The MCP endpoint at /mcp; with a dashboard, the dashboard (with its own login) at every other path."""
    mcp_app = BearerAuth(server.streamable_http_app(host=host), credentials)
    return mcp_app if dashboard is None else BesideMcp(mcp_app, dashboard)


class BesideMcp:
    """Sends /mcp (and the lifespan, which runs the MCP sessions) to the MCP app, the rest to `other`."""

    def __init__(self, mcp_app: ASGIApp, other: ASGIApp) -> None:
        self.mcp_app = mcp_app
        self.other = other

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "lifespan" or path == "/mcp" or path.startswith("/mcp/"):
            await self.mcp_app(scope, receive, send)
        else:
            await self.other(scope, receive, send)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 picks a free one (read it back with `getsockname`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


def url_of(sock: socket.socket) -> str:
    """The MCP endpoint's URL."""
    return base_url(sock) + "/mcp"


def base_url(sock: socket.socket) -> str:
    """The server's own URL, where the dashboard is."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Signals belong to the process: they must end the children first, not just the HTTP server.
        yield


async def serve(app: ASGIApp, sock: socket.socket) -> None:
    """Serve `app` on `sock` until cancelled, then shut the HTTP server down gracefully."""
    server = _Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))

    async def run() -> None:
        # Shielded so that uvicorn closes its connections and its lifespan when told to,
        # rather than being torn down mid-request by the cancellation.
        with anyio.CancelScope(shield=True):
            await server.serve(sockets=[sock])

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(run)
        try:
            await anyio.sleep_forever()
        finally:
            server.should_exit = True


def load_or_create_token(path: Path) -> tuple[str, bool]:
    """The HTTP bearer token kept in the state directory (mode 0600), and whether it is new."""
    try:
        token = path.read_text().strip()
        if token:
            return token, False
    except FileNotFoundError:
        pass
    token = new_token()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
    return token, True
