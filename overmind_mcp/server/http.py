"""Streamable HTTP: the same tools for IDEs and shared use, and for children calling back in.

Every request needs a bearer token; one without a valid token gets a bare 401 and learns
nothing else. On every loopback bind (127.0.0.0/8, ::1, localhost) a foreign Host gets 421
and a foreign Origin 403: DNS-rebinding protection. Request bodies and sessions are
bounded (http_limits.py). uvicorn serves the app inside our own task group, so the
process's signals stay ours: they end the supervisor's children before anything else.
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
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from overmind_mcp.identity import Credentials, bearer, new_token
from overmind_mcp.server.http_limits import MAX_REQUEST_BYTES, OversizeAsErrors, SessionLedger
from overmind_mcp.storage import files

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


SESSION_IDLE_TIMEOUT_S = 30 * 60
"""A session with no request for this long is closed (its client starts a new one on its next call). A
mission's sessions are bounded without it: they close when the mission ends, and it keeps 16 at most."""
MAX_SESSIONS = 256
SESSIONS_PER_CALLER = 16


def http_app(server: MCPServer, credentials: Credentials, host: str, dashboard: ASGIApp | None = None) -> ASGIApp:
    """The MCP endpoint at /mcp; with a dashboard, the dashboard (with its own login) at every other path."""
    sdk_app = server.streamable_http_app(
        host=host,
        transport_security=_rebinding_protection(host),
        max_request_body_size=MAX_REQUEST_BYTES,
        session_idle_timeout=SESSION_IDLE_TIMEOUT_S,
        max_sessions=MAX_SESSIONS,
    )
    ledger = SessionLedger(sdk_app, credentials, per_caller=SESSIONS_PER_CALLER)
    mcp_app = BearerAuth(OversizeAsErrors(ledger), credentials)
    return mcp_app if dashboard is None else BesideMcp(mcp_app, dashboard)


def _rebinding_protection(host: str) -> TransportSecuritySettings | None:
    """Host and Origin checks for a loopback bind, whichever loopback address it is; None for a public bind."""
    if not is_loopback(host):
        return None
    names = {host if ":" not in host else f"[{host}]", "127.0.0.1", "localhost", "[::1]"}
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=sorted(f"{name}:*" for name in names),
        allowed_origins=sorted(f"http://{name}:*" for name in names),
    )


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
    # The protocol named, not left 0: asyncio turns Nagle off only on connections of a socket that says
    # it is TCP. With Nagle on, an answer written in parts (headers, then body) waits for the client's
    # delayed ACK, 40 ms, on every request of a kept-alive connection but its first.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


def bind_remembered(host: str, port_file: Path) -> socket.socket:
    """A listening socket on the port the state directory's last server used, else on a new one (kept).

    A delegating child has its server's URL in its `--mcp-config` for good: when a server
    crashes and the next one re-adopts the child, the same port is what lets it back in.
    """
    try:
        remembered = int(port_file.read_text().strip())
    except (OSError, ValueError):
        remembered = 0
    try:
        sock = bind(host, remembered)
    except OSError:  # taken meanwhile (another server of this directory runs, or another program)
        sock = bind(host, 0)
    port = sock.getsockname()[1]
    if port != remembered:
        files.write_private(port_file, f"{port}\n".encode())
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
    """The HTTP bearer token kept in the state directory (mode 0600), and whether it is new.

    Never read or written through a symlink; a token file that others could read is
    refused (the token may have leaked), not quietly tightened.
    """
    fd = files.open_private(path, os.O_RDWR | os.O_CREAT, refuse_loose=True)
    with os.fdopen(fd, "r+") as file:
        token = file.read().strip()
        if token:
            return token, False
        token = new_token()
        file.seek(0)
        file.truncate()
        file.write(token + "\n")
    return token, True
