"""The dashboard's web app: pages, live event streams and actions, behind its own login.

Served beside the MCP endpoint by every server (see `server.http.http_app`). Its rules:

- loopback binds answer only to loopback Host names (DNS rebinding gets 421), as `/mcp` does;
- every page, stream and action needs a session cookie (HttpOnly, SameSite=Strict), made from a
  one-time code that `overmind dashboard` prints; without one: 401, and a page that says so;
- every action is a POST from this very origin (Origin checked) carrying the page's anti-CSRF
  token, and acts through the host server's supervisor (`kill`, `send`) or a panel's actions;
- pages are made on the server (Jinja2) and kept live by server-sent events, at most four
  updates a second per client; the script and styles are the package's own (no CDN, no build).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream
from sse_starlette import ServerSentEvent
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from overmind_mcp.console import answers
from overmind_mcp.console.common import CliError
from overmind_mcp.console.state import open_state
from overmind_mcp.dashboard.access import SESSION_TTL_S, Access, ServerRecord, cookie_name, csrf_token, published
from overmind_mcp.dashboard.board import MIN_INTERVAL_S, STALL_AFTER_S, Board, Card, Snapshot
from overmind_mcp.dashboard.changes import StateChanges
from overmind_mcp.dashboard.panels import Panel, PanelContext, Panels
from overmind_mcp.dashboard.stream import EventStream
from overmind_mcp.errors import Conflict, InvalidRequest, NotFound, OvermindError
from overmind_mcp.models import LIVE
from overmind_mcp.readside import views
from overmind_mcp.runners.local.process import process_start_time
from overmind_mcp.runners.local.watch import FileWatcher, Wakeup
from overmind_mcp.storage.changes import relay
from overmind_mcp.storage.missions import MissionRow

if TYPE_CHECKING:
    from jinja2 import Environment

    from overmind_mcp.supervision.supervisor import Supervisor

logger = logging.getLogger("overmind_mcp.dashboard")

LOG_TAIL_BYTES = 256 * 1024
"""How much of a mission's log its page starts with; the rest is in `overmind logs`."""
LOG_LINES_PER_UPDATE = 2000
_CARD_CACHE = 4096
_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
_PUBLIC_PATHS = ("/login", "/static/")
_SAFE_METHODS = frozenset({"GET", "HEAD"})


class Dashboard:
    """The dashboard of one server: `app` to serve, and `run` to keep it live (in the server's task group)."""

    def __init__(
        self,
        supervisor: Supervisor,
        *,
        loopback: bool,
        panels: Panels | None = None,
        stall_after_s: float = STALL_AFTER_S,
    ) -> None:
        self.supervisor = supervisor
        self.settings = supervisor.settings
        self.panels = panels or Panels.default()
        self._loopback = loopback
        self._stall_after_s = stall_after_s
        self._cookie = cookie_name(self.settings.home)
        self._templates: Environment | None = None
        self._card_html: dict[Card, str] = {}
        self._board_panels: tuple[int, dict[str, str]] = (-1, {})
        self._board: Board | None = None
        self._access: Access | None = None
        self._watcher: FileWatcher | None = None
        self._closing = anyio.Event()
        self.app: ASGIApp = _Guard(self._routes(), self)

    # -- life -----------------------------------------------------------------------------------------

    async def run(self, url: str, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Keep the dashboard live and its URL published (for `overmind dashboard`) until cancelled."""
        settings = self.settings
        watcher = FileWatcher()
        access = await Access.open(settings.home)
        try:
            async with open_state(settings) as state, anyio.create_task_group() as tasks:
                tasks.start_soon(watcher.run)
                changes = StateChanges(watcher, settings.database_path, self.supervisor.bus)
                await tasks.start(changes.run)
                board = Board(state, changes, self._annotators(), stall_after_s=self._stall_after_s)
                await tasks.start(board.run)
                self._board, self._access, self._watcher = board, access, watcher
                me = ServerRecord(
                    server_id=self.supervisor.server_id,
                    url=url,
                    pid=os.getpid(),
                    proc_start=process_start_time(os.getpid()) or 0.0,
                    started_at=time.time(),
                )
                try:
                    with published(settings.home, me):
                        task_status.started()
                        await anyio.sleep_forever()
                finally:
                    # Open event streams end now, so the HTTP server's shutdown does not wait for them.
                    self._closing.set()
                    self._board = self._access = self._watcher = None
                    tasks.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await access.close()

    def _annotators(self) -> list[Callable[[], Awaitable[Mapping[str, Any]]]]:
        found = []
        for panel in self.panels:
            if panel.annotate is not None:
                found.append(_bind_annotate(panel, self))
        return found

    def context(self, mission: MissionRow | None = None) -> PanelContext:
        board = self._ready_board()
        return PanelContext(settings=self.settings, board=board, supervisor=self.supervisor, mission=mission)

    def _ready_board(self) -> Board:
        if self._board is None:
            raise _Unavailable()
        return self._board

    def _ready_access(self) -> Access:
        if self._access is None:
            raise _Unavailable()
        return self._access

    # -- routes ---------------------------------------------------------------------------------------

    def _routes(self) -> Starlette:
        static = StaticFiles(directory=str(resources.files("overmind_mcp.dashboard") / "static"))
        return Starlette(
            routes=[
                Route("/", self.board_page),
                Route("/events", self.board_events),
                Route("/login", self.login, methods=["GET", "POST"]),
                Route("/logout", self.logout, methods=["POST"]),
                Route("/missions/{ref}", self.mission_page),
                Route("/missions/{mission_id}/events", self.mission_events),
                Route("/missions/{mission_id}/kill", self.kill, methods=["POST"]),
                Route("/missions/{mission_id}/send", self.send, methods=["POST"]),
                Route("/panels/{panel}/{action}", self.panel_action, methods=["POST"]),
                Mount("/static", static, name="static"),
            ],
            exception_handlers={_Unavailable: _unavailable, _Refused: _refused},
        )

    # -- login ----------------------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        if request.method == "POST":
            code = str((await request.form()).get("code") or "").strip()
        else:
            code = request.query_params.get("code", "").strip()
        if not code:
            return self.login_page(request, None)
        session = await self._ready_access().redeem(code)
        if session is None:
            return self.login_page(request, "That login code is wrong, used or expired: run `overmind dashboard`.")
        # The code stays out of the address bar and the history from here on.
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            self._cookie,
            session,
            max_age=int(SESSION_TTL_S),
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    def login_page(self, request: Request, error: str | None) -> Response:
        html = self._render("login.html", error=error, home=str(self.settings.home))
        return HTMLResponse(html, status_code=401, headers={"cache-control": "no-store"})

    async def logout(self, request: Request) -> Response:
        await self._checked_form(request)
        await self._ready_access().end_session(request.state.session)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(self._cookie, path="/", httponly=True, samesite="strict")
        return response

    # -- the board ------------------------------------------------------------------------------------

    async def board_page(self, request: Request) -> Response:
        board = self._ready_board()
        async with board.watching():
            snapshot = await board.fresh()
            panels = await self._board_panel_html(snapshot.version)
        html = self._render(
            "board.html",
            csrf=csrf_token(request.state.session),
            snapshot=snapshot,
            groups=[(group, [self._card(snapshot.cards[i]) for i in group.ids]) for group in snapshot.groups],
            totals=self._render("totals.html", totals=snapshot.totals),
            panels=[(panel, panels.get(panel.name, "")) for panel in self.panels.on("board")],
            now=time.time(),
        )
        return HTMLResponse(html, headers={"cache-control": "no-store"})

    async def board_events(self, request: Request) -> Response:
        board = self._ready_board()
        since = _int(request.query_params.get("v"), 0)

        async def produce(send: MemoryObjectSendStream[ServerSentEvent]) -> None:
            async with board.watching():
                # The page was drawn from version `since`: if the board has moved on, it gets everything.
                sent: Snapshot | None = board.snapshot if board.snapshot.version == since else None
                sent_panels = dict(self._board_panels[1]) if sent is not None else {}
                after = since if sent is not None else -1
                last = -math.inf
                while True:
                    snapshot = await board.next(after)
                    if snapshot is None:
                        return
                    await anyio.sleep(max(last + MIN_INTERVAL_S - time.monotonic(), 0.0))
                    snapshot = board.snapshot  # the newest, after the pause
                    update = self._board_update(sent, snapshot)
                    panels = await self._board_panel_html(snapshot.version)
                    changed = {name: html for name, html in panels.items() if sent_panels.get(name) != html}
                    if changed:
                        update["panels"] = changed
                    await send.send(ServerSentEvent(json.dumps(update), event="board"))
                    sent, sent_panels, after, last = snapshot, panels, snapshot.version, time.monotonic()

        return EventStream(produce, self._closing)

    def _board_update(self, sent: Snapshot | None, snapshot: Snapshot) -> dict[str, Any]:
        update: dict[str, Any] = {
            "version": snapshot.version,
            "cards": {
                mission_id: self._card(card)
                for mission_id, card in snapshot.cards.items()
                if sent is None or sent.cards.get(mission_id) != card
            },
        }
        if sent is None or sent.groups != snapshot.groups:
            update["groups"] = [
                {"key": group.attention, "title": group.title, "ids": list(group.ids)} for group in snapshot.groups
            ]
        if sent is None or sent.totals != snapshot.totals:
            update["totals"] = self._render("totals.html", totals=snapshot.totals)
        return update

    def _card(self, card: Card) -> str:
        html = self._card_html.get(card)
        if html is None:
            if len(self._card_html) >= _CARD_CACHE:
                self._card_html.clear()
            html = self._card_html[card] = self._render("card.html", card=card)
        return html

    async def _board_panel_html(self, version: int) -> dict[str, str]:
        """Each board panel drawn for this version of the board (once, whoever asks)."""
        drawn_for, drawn = self._board_panels
        if drawn_for != version:
            drawn = {panel.name: await self._panel(panel, self.context()) for panel in self.panels.on("board")}
            self._board_panels = (version, drawn)
        return drawn

    async def _panel(self, panel: Panel, context: PanelContext) -> str:
        try:
            data = await panel.load(context)
        except Exception:
            # A panel that fails is a panel that says so; the page around it goes on.
            logger.exception("the %s panel failed", panel.name)
            return self._render("panel_failed.html", panel=panel)
        return self._render(panel.template, panel=panel, **data)

    # -- one mission ----------------------------------------------------------------------------------

    async def mission_page(self, request: Request) -> Response:
        board = self._ready_board()
        row = await self._row(request.path_params["ref"])
        async with board.watching():
            await board.fresh()
            head = await self._mission_head(row.id, csrf_token(request.state.session))
        lines, cursor = self._log_tail(row)
        html = self._render(
            "mission.html",
            csrf=csrf_token(request.state.session),
            row=row,
            head=head,
            lines=lines,
            cursor=cursor,
            now=time.time(),
        )
        return HTMLResponse(html, headers={"cache-control": "no-store"})

    async def mission_events(self, request: Request) -> Response:
        board = self._ready_board()
        watcher = self._watcher
        assert watcher is not None
        row = await self._row(request.path_params["mission_id"])
        # A reconnecting browser says where it got to.
        cursor = _int(request.headers.get("last-event-id") or request.query_params.get("cursor"), 0)
        csrf = csrf_token(request.state.session)

        async def produce(send: MemoryObjectSendStream[ServerSentEvent]) -> None:
            nonlocal cursor
            wakeup = Wakeup()
            async with board.watching(), anyio.create_task_group() as tasks:
                tasks.start_soon(_relay_board, board, wakeup)
                output = Path(row.output_path)
                following = False
                head_sent: dict[str, str] | None = None
                last = -math.inf
                while not board.closed.is_set():
                    if not following:
                        # Watched before it is read, so no line written in between is missed.
                        try:
                            await tasks.start(relay, watcher, output, wakeup)
                            following = True
                        except FileNotFoundError:
                            pass  # queued: no output yet; the board wakes us when that changes
                    lines, cursor = _read_log(row, cursor)
                    if lines:
                        data = json.dumps({"lines": lines, "cursor": cursor})
                        await send.send(ServerSentEvent(data, event="log", id=str(cursor)))
                    head = await self._mission_head(row.id, csrf)
                    news = bool(lines) or head != head_sent
                    if head != head_sent:
                        await send.send(ServerSentEvent(json.dumps(head), event="head"))
                        head_sent = head
                    if news:
                        last = time.monotonic()
                    await wakeup.wait()
                    # Leading edge: news after a quiet spell goes at once; a stream of it, 4 times a second.
                    await anyio.sleep(max(last + MIN_INTERVAL_S - time.monotonic(), 0.0))
                tasks.cancel_scope.cancel()

        return EventStream(produce, self._closing)

    async def _mission_head(self, mission_id: str, csrf: str) -> dict[str, str]:
        """The mission page's live parts: above the log its line and its actions, below it the rest."""
        board = self._ready_board()
        row = await board.state.store.get(mission_id)
        if row is None:
            return {"top": self._render("gone.html", mission_id=mission_id), "bottom": ""}
        # The row was just read; the board may be a moment behind it: what disagrees waits for its next look.
        live = board.live_output(row.id) if row.status in LIVE else None
        card = board.snapshot.cards.get(row.id)
        if card is not None and card.status != row.status:
            card = None
        context = self.context(row)
        facts = {
            "row": row,
            "result": answers.result(row, live, text_limit=self.settings.result_text_chars),
            "children": [card for card in board.snapshot.cards.values() if card.parent_id == row.id],
            "csrf": csrf,
        }
        return {
            "top": self._render(
                "mission_top.html",
                card_html=self._card(card) if card is not None else None,
                live=row.status in LIVE,
                session=row.spec.session,
                **facts,
            ),
            "bottom": self._render(
                "mission_bottom.html",
                panels=[(panel, await self._panel(panel, context)) for panel in self.panels.on("mission")],
                **facts,
            ),
        }

    def _log_tail(self, row: MissionRow) -> tuple[list[str], int]:
        """The readable lines of the end of the log, and the cursor just past them."""
        path = Path(row.output_path)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return [], 0
        cursor = _line_start(path, max(size - LOG_TAIL_BYTES, 0))
        collected: list[str] = []
        while True:
            lines, cursor = _read_log(row, cursor)
            if not lines:
                return collected, cursor
            collected.extend(lines)

    async def _row(self, ref: str) -> MissionRow:
        try:
            return await self._ready_board().state.resolve(ref)
        except CliError as exc:
            raise _Refused(NotFound(str(exc))) from None

    # -- actions --------------------------------------------------------------------------------------

    async def kill(self, request: Request) -> Response:
        form = await self._checked_form(request)
        row = await self._row(request.path_params["mission_id"])
        cascade = form.get("cascade", "1") != "0"
        try:
            outcome = await self.supervisor.kill([row.id], cascade=cascade, force=form.get("force") == "1")
        except OvermindError as exc:
            raise _Refused(exc) from None
        said = ", ".join(f"{ended.name}: {ended.how}" for ended in outcome.ended)
        return _done(request, f"ended {said}", f"/missions/{row.id}")

    async def send(self, request: Request) -> Response:
        form = await self._checked_form(request)
        row = await self._row(request.path_params["mission_id"])
        message = str(form.get("message") or "")
        try:
            turn = await self.supervisor.send(row.id, message, wait=False)
        except OvermindError as exc:
            raise _Refused(exc) from None
        where = f"#{turn.queue_position} in its queue" if turn.queue_position else turn.state
        return _done(request, f"sent to {row.name}: turn {turn.turn}, {where}", f"/missions/{row.id}")

    async def panel_action(self, request: Request) -> Response:
        form = await self._checked_form(request)
        panel = self.panels.get(request.path_params["panel"])
        action = panel.actions.get(request.path_params["action"]) if panel is not None else None
        if panel is None or action is None:
            raise _Refused(NotFound(f"no panel action {request.path_params['panel']}/{request.path_params['action']}"))
        mission_ref = str(form.get("mission") or "")
        mission = await self._row(mission_ref) if mission_ref else None
        try:
            said = await action(self.context(mission), {key: str(value) for key, value in form.items()})
        except OvermindError as exc:
            raise _Refused(exc) from None
        return _done(request, said, f"/missions/{mission.id}" if mission else "/")

    async def _checked_form(self, request: Request) -> FormData:
        """The form of an action, once its anti-CSRF token is checked (the Origin already was)."""
        form = await request.form()
        token = request.headers.get("x-csrf-token") or str(form.get("csrf") or "")
        if not hmac.compare_digest(token.encode(), csrf_token(request.state.session).encode()):
            raise _Refused(_Forbidden("the request lacks this page's anti-CSRF token: reload the page and try again"))
        return form

    # -- templates ------------------------------------------------------------------------------------

    def _render(self, name: str, **context: Any) -> str:
        if self._templates is None:
            self._templates = _environment()
        return self._templates.get_template(name).render(**context)


# -- the guard in front of every route ----------------------------------------------------------------


class _Guard:
    """Host names, sessions, origins and security headers for every request to the dashboard."""

    def __init__(self, app: ASGIApp, dashboard: Dashboard) -> None:
        self.app = app
        self.dashboard = dashboard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
            await send(message)

        request = Request(scope)
        host = request.headers.get("host")
        if self.dashboard._loopback and not _is_loopback_host(host):
            # A page on another site that resolves its own name to 127.0.0.1 (DNS rebinding).
            await Response("Invalid Host header", status_code=421)(scope, receive, secured)
            return
        if request.method not in _SAFE_METHODS and request.headers.get("origin") != f"{request.url.scheme}://{host}":
            await _json_error(403, "refused: actions are taken only from the dashboard's own pages")(
                scope, receive, secured
            )
            return
        path = scope["path"]
        if path == "/login" or path.startswith("/static/"):
            await self.app(scope, receive, secured)
            return
        session = request.cookies.get(self.dashboard._cookie)
        access = self.dashboard._access
        if access is None:
            await _unavailable(request, _Unavailable())(scope, receive, secured)
            return
        if not await access.is_session(session):
            wants_page = request.method == "GET" and "text/html" in request.headers.get("accept", "")
            refusal = self.dashboard.login_page(request, None) if wants_page else _json_error(401, "unauthorized")
            await refusal(scope, receive, secured)
            return
        scope.setdefault("state", {})["session"] = session
        await self.app(scope, receive, secured)


def _is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    name = host
    if host.startswith("["):
        name = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        name = host.split(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


# -- errors ----------------------------------------------------------------------------------------------


class _Unavailable(Exception):
    """The dashboard is starting or stopping."""


class _Forbidden(OvermindError):
    pass


class _Refused(Exception):
    """An action or a page that cannot be done as asked: the project's error, with its HTTP status."""

    def __init__(self, error: OvermindError) -> None:
        super().__init__(str(error))
        self.error = error


_STATUSES: list[tuple[type[OvermindError], int]] = [
    (NotFound, 404),
    (InvalidRequest, 400),
    (Conflict, 409),
    (_Forbidden, 403),
]


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, _Refused)
    status = next((code for kind, code in _STATUSES if isinstance(exc.error, kind)), 409)
    return _json_error(status, str(exc.error))


async def _unavailable(request: Request, exc: Exception) -> Response:
    return _json_error(503, "the dashboard is starting or stopping: try again in a moment")


def _json_error(status: int, message: str) -> Response:
    return JSONResponse({"ok": False, "error": message}, status_code=status, headers={"cache-control": "no-store"})


def _done(request: Request, message: str, then: str) -> Response:
    """An action's answer: JSON for the page's script, else back to the page (a plain form post)."""
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"ok": True, "message": message})
    return RedirectResponse(then, status_code=303)


# -- helpers ---------------------------------------------------------------------------------------------


async def _relay_board(board: Board, wakeup: Wakeup) -> None:
    """Set `wakeup` at every new version of the board, and once more when it closes."""
    after = board.snapshot.version
    while (snapshot := await board.next(after)) is not None:
        after = snapshot.version
        wakeup.set()
    wakeup.set()


def _bind_annotate(panel: Panel, dashboard: Dashboard) -> Callable[[], Awaitable[Mapping[str, Any]]]:
    annotate = panel.annotate
    assert annotate is not None

    async def annotations() -> Mapping[str, Any]:
        return await annotate(dashboard.context())

    return annotations


def _read_log(row: MissionRow, cursor: int) -> tuple[list[str], int]:
    """Readable lines from `cursor` (at most a batch), and the cursor past them."""
    lines: list[str] = []
    while len(lines) < LOG_LINES_PER_UPDATE:
        page = views.log_page(row, cursor=cursor, limit=500, format="text")
        if page.next_cursor == cursor:
            break
        lines.extend(page.lines)
        cursor = page.next_cursor
    return lines, cursor


def _line_start(path: Path, offset: int) -> int:
    """The first line start at or after `offset`."""
    if offset == 0:
        return 0
    with path.open("rb") as file:
        file.seek(offset - 1)
        while chunk := file.read(64 * 1024):
            newline = chunk.find(b"\n")
            if newline >= 0:
                return file.tell() - len(chunk) + newline + 1
    return offset


def _int(text: str | None, default: int) -> int:
    try:
        return max(int(text or default), 0)
    except ValueError:
        return default


def _environment() -> Environment:
    """The pages' templates, made on the first page asked for: a server nobody watches never loads jinja2."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    templates = Environment(
        loader=PackageLoader("overmind_mcp.dashboard", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates.filters.update(age=_age, tokens=_tokens, cost=_cost, clock=_clock)
    templates.globals.update(asset_version=_asset_version())
    return templates


def _asset_version() -> str:
    """Changes whenever the script or the styles do, so a browser never runs an old script on a new page."""
    digest = hashlib.sha256()
    for name in ("dashboard.js", "dashboard.css"):
        digest.update((resources.files("overmind_mcp.dashboard") / "static" / name).read_bytes())
    return digest.hexdigest()[:12]


def _age(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m"
    if seconds < 86400:
        return f"{seconds // 3600:.0f}h {seconds % 3600 // 60:.0f}m"
    return f"{seconds // 86400:.0f}d"


def _tokens(count: int) -> str:
    if count < 1000:
        return str(count)
    if count < 1_000_000:
        return f"{count / 1000:.1f}k"
    return f"{count / 1_000_000:.1f}M"


def _cost(value: float | None) -> str:
    if not value:
        return "$0"
    return f"${value:.2f}" if value >= 1 else f"${value:.4f}"


def _clock(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))
