"""A scriptable mock of the Anthropic Messages API, for running the real Claude Code CLI offline.

Point the CLI at it with ``ANTHROPIC_BASE_URL=api.base_url`` (see ``tests/e2e/conftest.py`` for the
whole environment). Every request is recorded; each ``POST /v1/messages`` is answered by the first
rule whose condition matches it, with the rule's step for that point of the conversation::

    api.on("CHILD-A", steps=[ToolUse("Bash", {"command": "echo hi"}), Text("done A")])
    api.on("PARENT", steps=[ToolUse("mcp__overmind__spawn", {"prompt": "CHILD-A"}),
                            Text(lambda req: f"children said: {req.last_tool_result}")])
    api.default(Text("MOCK REPLY"))

How a request finds its step, statelessly (so one rule serves any number of concurrent processes,
and resumed sessions too):

* The *turn* of a request starts at the last user message with no tool results and some text besides
  ``<system-reminder>`` blocks: what a person (a ``-p`` prompt, a ``--input-format stream-json`` stdin
  line, ``--resume=ID -p PROMPT``) said last. ``turn_prompt`` is that message's last such text, and
  ``prompt_contains`` (here and in ``wait_for``) is matched against it.
* The step index is the number of assistant messages after that user message. In a plain
  ``claude -p`` run that is simply the number of assistant turns so far; in a session each new user
  turn starts its rule's script again from step 0.

Facts about Claude Code 2.1.332 that shaped this module (measured against this mock):

* The conversation is ``POST /v1/messages?beta=true`` with ``stream: true``. No side requests were seen
  in ``claude -p`` runs (no count_tokens, no non-streaming calls, with or without
  ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC``); the mock answers both kinds anyway.
* ``messages`` may hold a ``role: "system"`` message (environment details) after the first user message.
* 429, 500 and 529 are retried, each retry announced by a ``system/api_retry`` stdout line, after
  about 0.5, 1.1, 2.3, 4.8, 8.6 s …, ten times by default: minutes. ``CLAUDE_CODE_MAX_RETRIES=N`` caps
  that (0: no retry); a response header ``x-should-retry: false`` disables it. ``retry-after: 0`` and
  ``CLAUDE_CODE_OVERLOADED_RETRY_{BASE,MAX}_DELAY_MS`` do not shorten the wait. A 400 is sent again
  twice at once with fewer ``anthropic-beta`` features, then reported (three requests, no api_retry).
* After an interrupt (``control_request`` ``interrupt``) the next stdin prompt is merged into the
  interrupted user message; ``turn_prompt`` still finds it, as it is that message's last text.
* A stream that only pings is waited on indefinitely: no idle watchdog by default.
"""

from __future__ import annotations

import gzip
import json
import socket
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple, TypeAlias
from urllib.parse import urlsplit

JSON: TypeAlias = dict[str, Any]

__all__ = [
    "ApiError",
    "Loop",
    "MockAnthropicAPI",
    "RecordedRequest",
    "Rule",
    "Stall",
    "Step",
    "Text",
    "ToolCall",
    "ToolUse",
]

_SYSTEM_REMINDER = "<system-reminder>"


# --------------------------------------------------------------------------------------------------
# Recorded requests


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the mock received it, with accessors for what tests usually look at."""

    index: int
    method: str
    path: str
    query: str
    headers: dict[str, str]  # names lower-cased
    body: JSON | None
    rule: str | None = None  # name of the rule that answered it, None for non-Messages requests
    step: int | None = None  # that rule's step index
    # Wall-clock time (time.time()) its body had been read: comparable with timestamps of other processes.
    received_at: float = field(default_factory=time.time, compare=False)

    @property
    def is_messages(self) -> bool:
        """A Messages API call (as opposed to count_tokens or an unknown path)."""
        return self.method == "POST" and self.path == "/v1/messages"

    @property
    def stream(self) -> bool:
        return bool(self.body and self.body.get("stream"))

    @property
    def model(self) -> str:
        return str((self.body or {}).get("model") or "claude-mock")

    @property
    def messages(self) -> list[JSON]:
        messages = (self.body or {}).get("messages")
        return messages if isinstance(messages, list) else []

    @property
    def prompt(self) -> str | None:
        """The prompt of the conversation: the last non-reminder text of the first user message."""
        first = next((m for m in self.messages if m.get("role") == "user"), None)
        return None if first is None else _user_text(first)

    @property
    def turn_prompt(self) -> str | None:
        """The text of the user message that started the current turn (== ``prompt`` for ``claude -p``)."""
        index = self._turn_start()
        return None if index is None else _user_text(self.messages[index])

    @property
    def turn_step(self) -> int:
        """Assistant messages since the current turn started: the step index used for rules."""
        start = self._turn_start()
        tail = self.messages if start is None else self.messages[start + 1 :]
        return sum(1 for m in tail if m.get("role") == "assistant")

    @property
    def assistant_turns(self) -> int:
        """All assistant messages in the conversation so far."""
        return sum(1 for m in self.messages if m.get("role") == "assistant")

    @property
    def system(self) -> str:
        system = (self.body or {}).get("system")
        if isinstance(system, list):
            return "\n".join(b.get("text", "") for b in system if isinstance(b, dict))
        return system if isinstance(system, str) else ""

    @property
    def tool_names(self) -> list[str]:
        return [t["name"] for t in (self.body or {}).get("tools") or [] if isinstance(t, dict) and "name" in t]

    @property
    def last_tool_result(self) -> str | None:
        """The text of the newest ``tool_result`` block (list contents are joined), None if there is none."""
        for message in reversed(self.messages):
            content = message.get("content")
            if message.get("role") != "user" or not isinstance(content, list):
                continue
            for block in reversed(content):
                if _is_block(block, "tool_result"):
                    return _text_of(block.get("content"))
        return None

    @property
    def tool_calls(self) -> list[ToolCall]:
        """Every tool call of the conversation that has its result, oldest first."""
        uses: dict[str, JSON] = {}
        calls: list[ToolCall] = []
        for message in self.messages:
            content = message.get("content")
            if not isinstance(content, list):
                continue
            for block in content:
                if message.get("role") == "assistant" and _is_block(block, "tool_use"):
                    uses[str(block.get("id"))] = block
                elif message.get("role") == "user" and _is_block(block, "tool_result"):
                    use = uses.get(str(block.get("tool_use_id")), {})
                    calls.append(
                        ToolCall(
                            name=str(use.get("name", "?")),
                            input=use.get("input") if isinstance(use.get("input"), dict) else {},
                            result=_text_of(block.get("content")),
                            is_error=bool(block.get("is_error")),
                        )
                    )
        return calls

    def _turn_start(self) -> int | None:
        for index in range(len(self.messages) - 1, -1, -1):
            if _starts_turn(self.messages[index]):
                return index
        return None


class ToolCall(NamedTuple):
    """A tool the CLI ran for the model, as the conversation shows it: the model's call and its result."""

    name: str
    input: JSON
    result: str
    is_error: bool


def _starts_turn(message: JSON) -> bool:
    """A user message with something a person said, as opposed to tool results (maybe with reminders)."""
    content = message.get("content")
    if message.get("role") != "user":
        return False
    if isinstance(content, str):
        return True
    if not isinstance(content, list) or any(_is_block(b, "tool_result") for b in content):
        return False
    return any(_is_block(b, "text") and not _is_reminder(b.get("text", "")) for b in content)


def _is_block(block: Any, kind: str) -> bool:
    return isinstance(block, dict) and block.get("type") == kind


def _is_reminder(text: str) -> bool:
    return text.lstrip().startswith(_SYSTEM_REMINDER)


def _user_text(message: JSON) -> str | None:
    """The last text block of a user message, skipping the ``<system-reminder>`` blocks the CLI adds."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    texts = [b["text"] for b in content if _is_block(b, "text") and isinstance(b.get("text"), str)]
    human = [t for t in texts if not _is_reminder(t)]
    return (human or texts or [None])[-1]


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b.get("text", "") for b in content if _is_block(b, "text"))
    return "" if content is None else json.dumps(content)


# --------------------------------------------------------------------------------------------------
# Script steps


TextSource: TypeAlias = str | Callable[[RecordedRequest], str]
InputSource: TypeAlias = JSON | Callable[[RecordedRequest], JSON]


@dataclass(frozen=True)
class Text:
    """Answer with one text block and ``stop_reason: end_turn`` (ends the CLI's turn)."""

    text: TextSource


@dataclass(frozen=True)
class ToolUse:
    """Ask the CLI to run a tool (``stop_reason: tool_use``), optionally after a text block.

    ``also``: more tool calls in the same message, as a model calls tools in parallel.
    """

    name: str
    input: InputSource = field(default_factory=dict)
    text: TextSource | None = None
    also: tuple[ToolUse, ...] = ()


Reply: TypeAlias = Text | ToolUse


@dataclass(frozen=True)
class Stall:
    """Start the answer, then send only ``ping`` events.

    Lasts ``seconds`` (forever if None), or until the client goes away or the mock stops. Afterwards
    the answer continues with ``then``, or, without one, the connection is cut mid-stream. The CLI
    waits on a pinging stream indefinitely (no idle watchdog by default): a stalled child.
    """

    seconds: float | None = None
    then: Reply | None = None


@dataclass(frozen=True)
class ApiError:
    """Answer with an HTTP error carrying the Anthropic error body.

    The CLI retries 429, 5xx and 529 on its own with a backoff of about 0.5 s, 1 s, 2 s, … (ten times
    by default, so minutes in all). To keep a test fast, either answer ``should_retry=False`` (sends
    ``x-should-retry: false``, which the CLI obeys: no retry at all), or cap the retries with
    ``CLAUDE_CODE_MAX_RETRIES=N`` in the CLI's environment, or use ``times``.

    With ``times=N`` only the first N requests that reach this step fail (counted per ``ApiError``
    object, across every process using it); later ones are answered by ``then``, so
    ``ApiError(529, "overloaded_error", times=1, then=Text("ok"))`` is one retry that succeeds.
    """

    status: int = 500
    error_type: str = "api_error"
    message: str = "Internal server error (mock)"
    should_retry: bool | None = None
    times: int | None = None
    then: Reply | Stall | None = None

    def __post_init__(self) -> None:
        if (self.times is None) != (self.then is None):
            raise ValueError("ApiError: give both `times` and `then`, or neither")


@dataclass(frozen=True)
class Loop:
    """Serve ``step`` at its own position and at every later one (put it last), e.g. for ``--max-turns``."""

    step: Reply | Stall | ApiError


Step: TypeAlias = Text | ToolUse | Stall | ApiError | Loop


@dataclass(frozen=True)
class Rule:
    """Steps served to requests whose current turn matches; see ``MockAnthropicAPI.on``."""

    name: str
    steps: tuple[Step, ...]
    prompt_contains: str | None = None
    match: Callable[[RecordedRequest], bool] | None = None

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError(f"rule {self.name!r} has no steps")
        if any(isinstance(s, Loop) for s in self.steps[:-1]):
            raise ValueError(f"rule {self.name!r}: Loop must be the last step")

    def matches(self, request: RecordedRequest) -> bool:
        if self.prompt_contains is not None and self.prompt_contains not in (request.turn_prompt or ""):
            return False
        return self.match is None or self.match(request)

    def step_at(self, index: int) -> Step:
        if index < len(self.steps):
            step = self.steps[index]
            return step.step if isinstance(step, Loop) else step
        last = self.steps[-1]
        if isinstance(last, Loop):
            return last.step
        # Visible in the CLI's output, where a test failure will show it.
        return Text(f"[mockapi] rule {self.name!r} has no step {index}")


# --------------------------------------------------------------------------------------------------
# The mock


class MockAnthropicAPI:
    """The mock server. Use it as a context manager, or call ``start()`` and ``stop()``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        input_tokens: int = 100,
        ping_interval: float = 0.5,
    ) -> None:
        self._host = host
        # Usage reported per response; with the CLI's default model, non-zero tokens give a non-zero cost.
        self.input_tokens = input_tokens
        self.ping_interval = ping_interval
        self._cond = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._rules: list[Rule] = []
        self._default = Rule("default", (Text(lambda r: f"MOCK REPLY to: {r.turn_prompt}"),))
        self._error_hits: dict[int, int] = {}
        self._errors: list[BaseException] = []
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> MockAnthropicAPI:
        if self._server is not None:
            raise RuntimeError("mock API already started")
        self._stopping.clear()
        self._server = _Server((self._host, 0), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="mockapi", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut every open connection (stalled streams included) and join all threads."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()  # no new connections after this returns
        with self._cond:
            connections = list(self._connections)
        for conn in connections:
            # Wakes handlers blocked reading a kept-alive connection; stalled streams notice _stopping.
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()  # joins the handler threads
        thread.join()
        self._server = self._thread = None

    def __enter__(self) -> MockAnthropicAPI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("mock API not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    # -- scripting ---------------------------------------------------------------------------------

    def on(
        self,
        prompt_contains: str | None = None,
        *,
        steps: Sequence[Step],
        match: Callable[[RecordedRequest], bool] | None = None,
        name: str | None = None,
    ) -> Rule:
        """Add a rule. Rules are tried in the order they were added; the first match answers."""
        with self._cond:
            rule = Rule(name or prompt_contains or f"rule{len(self._rules)}", tuple(steps), prompt_contains, match)
            self._rules.append(rule)
        return rule

    def default(self, *steps: Step) -> None:
        """Set the steps for requests no rule matches (initially: ``MOCK REPLY to: <turn prompt>``)."""
        with self._cond:
            self._default = Rule("default", steps)

    # -- inspection --------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order."""
        with self._cond:
            return list(self._requests)

    @property
    def messages_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.is_messages]

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised while answering (e.g. in a test's callable); a test should end with none."""
        with self._cond:
            return list(self._errors)

    def wait_for(
        self,
        predicate: Callable[[RecordedRequest], bool] | None = None,
        *,
        prompt_contains: str | None = None,
        timeout: float = 10.0,
    ) -> RecordedRequest:
        """Block until a Messages request satisfying both conditions has arrived (or had already)."""

        def wanted(request: RecordedRequest) -> bool:
            return (
                request.is_messages
                and (prompt_contains is None or prompt_contains in (request.turn_prompt or ""))
                and (predicate is None or predicate(request))
            )

        with self._cond:
            seen = 0
            deadline = time.monotonic() + timeout
            while True:
                for request in self._requests[seen:]:
                    if wanted(request):
                        return request
                seen = len(self._requests)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    prompts = [r.turn_prompt for r in self._requests if r.is_messages]
                    raise TimeoutError(f"no matching request within {timeout} s; turn prompts seen: {prompts!r}")
                self._cond.wait(remaining)

    # -- used by the request handler ---------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> tuple[RecordedRequest, Step | None]:
        """Store the request and pick the step that answers it, atomically."""
        with self._cond:
            step: Step | None = None
            if request.is_messages:
                try:
                    rule = next((r for r in self._rules if r.matches(request)), self._default)
                except Exception as error:  # a test's `match` callable failed
                    self._errors.append(error)
                    rule = Rule("<match failed>", (_failure(error),))
                index = request.turn_step
                step = rule.step_at(index)
                if isinstance(step, ApiError) and step.times is not None:
                    hits = self._error_hits.get(id(step), 0)
                    self._error_hits[id(step)] = hits + 1
                    if hits >= step.times:
                        step = step.then
                request = replace(request, index=len(self._requests), rule=rule.name, step=index)
            else:
                request = replace(request, index=len(self._requests))
            self._requests.append(request)
            self._cond.notify_all()
            return request, step

    def _add_error(self, error: BaseException) -> None:
        with self._cond:
            self._errors.append(error)

    @contextmanager
    def _tracked(self, conn: socket.socket) -> Iterator[None]:
        with self._cond:
            self._connections.add(conn)
        try:
            yield
        finally:
            with self._cond:
                self._connections.discard(conn)


# --------------------------------------------------------------------------------------------------
# HTTP plumbing


class _Server(ThreadingHTTPServer):
    # Non-daemon handler threads, so that server_close() joins them all: stop() leaves no thread behind.
    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], api: MockAnthropicAPI) -> None:
        self.api = api
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        # A client hanging up (a killed CLI), or stop() cutting the socket, is business as usual.
        if error is not None and not isinstance(error, OSError):
            self.api._add_error(error)


class _Disconnected(Exception):
    """The client went away, or the mock is stopping, while an answer was being written."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive for JSON answers; SSE answers close the connection
    _streaming = False

    def handle(self) -> None:
        with self.server.api._tracked(self.connection):
            super().handle()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are recorded instead; keeps test output readable

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    # -- dispatch ----------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        api = self.server.api
        self._streaming = False
        url = urlsplit(self.path)
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            body = None
        request, step = api._record(
            RecordedRequest(
                index=-1,
                method=self.command,
                path=url.path,
                query=url.query,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body if isinstance(body, dict) else None,
            )
        )
        if raw and request.body is None:
            self._send_error(400, "invalid_request_error", "mockapi: the request body is not a JSON object")
        elif self.command == "POST" and url.path == "/v1/messages/count_tokens":
            self._send_json(200, {"input_tokens": max(1, len(raw) // 4)})
        elif request.is_messages:
            try:
                self._answer(request, step)
            except _Disconnected:
                self.close_connection = True
            except Exception as error:  # e.g. a test's callable failed: report it rather than hang the CLI
                api._add_error(error)
                if self._streaming:
                    self.close_connection = True
                else:
                    self._answer(request, _failure(error))
        else:
            self._send_error(404, "not_found_error", f"mockapi: no route for {self.command} {url.path}")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            raw = b"".join(chunks)
        else:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        match self.headers.get("Content-Encoding", "").lower():
            case "gzip":
                return gzip.decompress(raw)
            case "deflate":
                return zlib.decompress(raw)
            case _:
                return raw

    def _answer(self, request: RecordedRequest, step: Step | None) -> None:
        match step:
            case Text() | ToolUse():
                self._reply(request, step)
            case ApiError(status=status, error_type=error_type, message=message, should_retry=should_retry):
                headers = {} if should_retry is None else {"x-should-retry": str(should_retry).lower()}
                self._send_error(status, error_type, message, headers)
            case Stall(seconds=seconds, then=then):
                if request.stream:
                    self._start_stream(request)
                if not self._pings_until(seconds) or then is None:
                    raise _Disconnected
                self._reply(request, then)
            case _:
                raise TypeError(f"mockapi: cannot answer with {step!r}")

    # -- answers -----------------------------------------------------------------------------------

    def _reply(self, request: RecordedRequest, step: Reply) -> None:
        blocks = _blocks(step, request)  # before any byte is sent, so that a failing callable gets a clean 400
        stop_reason = "tool_use" if isinstance(step, ToolUse) else "end_turn"
        output_tokens = max(1, len(json.dumps(blocks)) // 4)
        if not request.stream:
            message = self._message(request, blocks, stop_reason)
            message["usage"]["output_tokens"] = output_tokens
            self._send_json(200, message)
            return
        if not self._streaming:
            self._start_stream(request)
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                opening, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": block["text"]}
            else:
                opening = {**block, "input": {}}
                delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            self._event("content_block_start", {"index": index, "content_block": opening})
            self._event("content_block_delta", {"index": index, "delta": delta})
            self._event("content_block_stop", {"index": index})
        self._event(
            "message_delta",
            {"delta": {"stop_reason": stop_reason, "stop_sequence": None}, "usage": {"output_tokens": output_tokens}},
        )
        self._event("message_stop", {})

    def _message(self, request: RecordedRequest, content: list[JSON], stop_reason: str | None) -> JSON:
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": request.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": self.server.api.input_tokens,
                "output_tokens": 1,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }

    def _start_stream(self, request: RecordedRequest) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")  # the end of the stream is the end of the connection
        self.send_header("request-id", _request_id())
        self.end_headers()
        self.close_connection = True
        self._streaming = True
        self._event("message_start", {"message": self._message(request, [], None)})

    def _pings_until(self, seconds: float | None) -> bool:
        """Wait ``seconds`` (forever if None), pinging if streaming; False if the mock stops first."""
        api = self.server.api
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            wait = api.ping_interval if deadline is None else min(api.ping_interval, deadline - time.monotonic())
            if wait <= 0:
                return True
            if api._stopping.wait(wait):
                return False
            if self._streaming:
                self._event("ping", {})  # raises _Disconnected once the client has gone

    def _event(self, name: str, data: JSON) -> None:
        payload = json.dumps({"type": name, **data})
        try:
            self.wfile.write(f"event: {name}\ndata: {payload}\n\n".encode())
        except OSError as error:
            raise _Disconnected from error

    def _send_error(self, status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> None:
        body = {"type": "error", "error": {"type": error_type, "message": message}, "request_id": _request_id()}
        self._send_json(status, body, headers)

    def _send_json(self, status: int, body: JSON, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("request-id", _request_id())
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def _blocks(step: Reply, request: RecordedRequest) -> list[JSON]:
    def text(source: TextSource) -> JSON:
        return {"type": "text", "text": source(request) if callable(source) else source}

    if isinstance(step, Text):
        return [text(step.text)]
    uses = []
    for use in (step, *step.also):
        tool_input = use.input(request) if callable(use.input) else use.input
        uses.append({"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": use.name, "input": tool_input})
    return uses if step.text is None else [text(step.text), *uses]


def _failure(error: Exception) -> ApiError:
    # A 400 that must not be retried, so that a broken test script fails fast instead of backing off for minutes.
    message = f"mockapi: {type(error).__name__}: {error}"
    return ApiError(400, "invalid_request_error", message, should_retry=False)


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex[:24]}"
