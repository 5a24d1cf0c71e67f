"""Every tool, fuzzed through a real MCP client: generated arguments, valid, nearly valid and hostile.

Arguments come from each tool's own input schema, mixed with values of the wrong type,
hostile strings (paths, flags, namespaces, query syntax, a string over a megabyte), huge
and negative numbers, and unknown argument names. They are sent by the top-level client
over stdio, and by a child with few permissions over HTTP with its own token. The oracle
is the issue's: no internal error, no call without an answer, the server alive, and
nothing left running once the missions are killed.

`OVERMIND_FUZZ_EXAMPLES` sets the examples per tool and caller (default 25).
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from overmind_mcp.server import toolset
from overmind_mcp.server.strict import strict_tool
from overmind_mcp.settings import Settings
from tests.conftest import FAKE_CLAUDE, assert_no_leftovers
from tests.helpers import stdio_server
from tests.redteam.conftest import CALL_TIMEOUT_S, Tally, acting_as, looks_internal, text_of

EXAMPLES = int(os.environ.get("OVERMIND_FUZZ_EXAMPLES", "25"))
TOOLS = [tool.fn.__name__ for tool in toolset.ALL]

HOSTILE_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "-",
    "--help",
    "-rf",
    "..",
    "../../etc/passwd",
    "/",
    "/etc/hostname",
    "~",
    "~root",
    "$(id)",
    "`id`",
    "; echo pwned",
    "*",
    '"',
    "OR",
    "NOT",
    "NEAR(",
    "a:b",
    "global",
    "project",
    "run",
    "mission",
    "project:/",
    "project:relative",
    "run:0000000000000000",
    "mission:ffffffffffffffff",
    "kind:value",
    "0000000000000000",
    "Bash",
    "Bash(sh:*)",
    "bypassPermissions",
    "HOME",
    "💥🧨",
    "x" * 5000,
    "y" * (1024 * 1024 + 1),
]
NUMBERS = [0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, 0.5, -0.0, 1e-300, 1e300]
# Never a shell, nor anything that runs code or this suite (pytest would): a generated argument
# must not become a program of its own.
PROGRAMS = ["true", "echo", "sleep", "/bin/echo", "no-such-program"]
SCRIPTS = [
    "A task.\nfake: answer done",
    "fake: sleep 0.3\nfake: answer slow",
    "fake: say hello\nfake: answer {last}",
    "fake: error API Error: 529 overloaded",
    "fake: turns 2",
]
NAMESPACES = ["global", "project", "run", "mission", "project:/tmp", "run:0123456789abcdef"]
UNKNOWN_ARGUMENTS = ["bogus", "max_budget", "Prompt", "id ", "__proto__"]
# True about one time in ten (hypothesis favours the first element, so the rule is what it tries first).
RARELY = st.sampled_from([False] * 9 + [True])


def hostile_strings() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(HOSTILE_STRINGS), st.text(max_size=40))


def any_json(depth: int = 2) -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.sampled_from(NUMBERS),
        st.floats(allow_nan=False, allow_infinity=False),
        hostile_strings(),
    )
    if depth == 0:
        return leaves
    nested = any_json(depth - 1)
    return st.one_of(leaves, st.lists(nested, max_size=4), st.dictionaries(hostile_strings(), nested, max_size=4))


@dataclass
class Known:
    """What the server holds: real mission refs and memory ids, so probes also name real things."""

    missions: list[str] = field(default_factory=list)
    memories: list[int] = field(default_factory=list)
    foreign_missions: list[str] = field(default_factory=list)
    foreign_memories: list[int] = field(default_factory=list)

    def refs(self) -> st.SearchStrategy[str]:
        real = self.missions + self.foreign_missions
        return st.one_of(st.sampled_from(real), hostile_strings()) if real else hostile_strings()


def plausible(tool: str, name: str, schema: dict[str, Any], known: Known) -> st.SearchStrategy[Any]:
    """A value of the kind a caller would send: what the schema takes, often naming real things."""
    kinds = [choice.get("type") for choice in schema.get("anyOf", [schema])]
    if "timeout" in name:
        # Every wait stays short, so that the fuzz itself never waits long.
        return st.floats(0, 1.5)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if name in ("id", "ids", "parent") and tool != "forget":
        refs = known.refs()
        return st.lists(refs, min_size=1, max_size=3) if "array" in kinds else refs
    if tool == "forget" and name == "id":
        real = known.memories + known.foreign_memories
        return st.one_of(st.sampled_from(real), st.integers(1, 10**6)) if real else st.integers(1, 10**6)
    match name:
        case "prompt" | "message" | "content" | "query":
            return st.one_of(st.sampled_from(SCRIPTS), st.text(min_size=1, max_size=200), hostile_strings())
        case "command":
            return st.builds(
                lambda program, args: [program, *args],
                st.sampled_from(PROGRAMS),
                st.lists(hostile_strings(), max_size=3),
            )
        case "cwd":
            return st.one_of(st.sampled_from(["/", "/tmp", ".", "..", "missing"]), hostile_strings())
        case "namespace":
            return st.one_of(st.sampled_from(NAMESPACES), hostile_strings())
        case "env":
            return st.dictionaries(
                st.sampled_from(["GREETING", "HOME", "PATH", "LD_PRELOAD", "A=B", ""]), hostile_strings(), max_size=3
            )
    options: list[st.SearchStrategy[Any]] = []
    for kind in kinds:
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        match kind:
            case "string":
                options.append(hostile_strings())
            case "integer":
                options.append(
                    st.integers(int(low if low is not None else 0) + 1, int(high if high is not None else 50))
                )
            case "number":
                options.append(
                    st.floats(float(low if low is not None else 0) + 0.01, float(high if high is not None else 5))
                )
            case "boolean":
                options.append(st.booleans())
            case "array":
                options.append(st.lists(hostile_strings(), max_size=4))
            case "object":
                options.append(st.dictionaries(hostile_strings(), hostile_strings(), max_size=3))
            case "null":
                options.append(st.none())
    return st.one_of(*options) if options else any_json()


def draw_arguments(data: st.DataObject, tool: str, schema: dict[str, Any], known: Known) -> dict[str, Any]:
    """Mostly well-formed arguments with a few keys; now and then a wrong value or an unknown name."""
    properties: dict[str, Any] = schema.get("properties", {})
    required = list(schema.get("required", []))
    optional = [name for name in properties if name not in required]
    if optional:
        required += data.draw(st.lists(st.sampled_from(optional), max_size=4, unique=True), label="optional")
    names = required
    if "timeout_s" in properties and "timeout_s" not in names and tool != "spawn":
        # A wait's default is 45 s: every probe gives one, so that none waits longer than a call may.
        names.append("timeout_s")
    if tool == "spawn" and not {"prompt", "command"} & set(names):
        names.append(data.draw(st.sampled_from(["prompt", "prompt", "command"]), label="kind"))
    arguments: dict[str, Any] = {}
    for name in names:
        wrong = data.draw(RARELY, label=f"{name} wrong?")
        strategy = (
            st.one_of(any_json(1), st.sampled_from(NUMBERS))
            if wrong
            else plausible(tool, name, properties[name], known)
        )
        arguments[name] = data.draw(strategy, label=name)
    if data.draw(RARELY, label="unknown?"):
        arguments[data.draw(st.sampled_from(UNKNOWN_ARGUMENTS))] = data.draw(any_json(0))
    return arguments


@dataclass
class Target:
    portal: BlockingPortal
    client: Client
    schemas: dict[str, dict[str, Any]]
    tally: Tally
    known: Known
    answered: Counter[str] = field(default_factory=Counter)

    def probe(self, tool: str, arguments: dict[str, Any]) -> None:
        self.tally.calls += 1
        described = f"{tool}({_short(arguments)})"
        try:
            result = self.portal.call(_call_within, self.client, tool, arguments)
        except TimeoutError:
            self.tally.hangs.append(described)
            return
        except Exception as exc:  # a protocol-level error answer is still an answer
            text = str(exc)
            self.answered[f"{tool}: protocol error"] += 1
        else:
            text = text_of(result) if result.is_error else ""
            self.answered[f"{tool}: {'refused' if result.is_error else 'done'}"] += 1
            self._learn(tool, result.structured_content or {})
        if looks_internal(text):
            self.tally.internal_errors.append(f"{described}: {text[:300]}")

    def _learn(self, tool: str, answer: dict[str, Any]) -> None:
        if tool == "spawn" and "id" in answer:
            self.known.missions += [answer["id"], answer["name"]]
        elif tool == "remember" and "id" in answer:
            self.known.memories.append(answer["id"])


async def _call_within(client: Client, tool: str, arguments: dict[str, Any]) -> Any:
    with anyio.fail_after(CALL_TIMEOUT_S):
        return await client.call_tool(tool, arguments)


def _short(arguments: dict[str, Any]) -> str:
    text = repr(arguments)
    return text if len(text) < 300 else text[:300] + "…"


async def _kill_everything(root: Client) -> None:
    listed = await root.call_tool("ps", {"limit": 1000})
    live = [m["id"] for m in (listed.structured_content or {}).get("missions", []) if m["status"] in LIVE]
    if live:
        await root.call_tool("kill", {"ids": live, "force": True})


LIVE = ("queued", "running", "restarting")


async def _bystanders(root: Client, known: Known) -> None:
    """Another tree's mission and memories, named to the fuzzer: things a child must never touch."""
    bystander = await root.call_tool("spawn", {"command": ["sleep", "600"], "name": "bystander"})
    mission_id = (bystander.structured_content or {})["id"]
    known.foreign_missions += [mission_id, "bystander"]
    for namespace in (f"run:{mission_id}", "global", "project"):
        memory = await root.call_tool("remember", {"content": "the person's", "namespace": namespace, "key": "kept"})
        known.foreign_memories.append((memory.structured_content or {})["id"])


async def _untouched(root: Client, known: Known) -> list[str]:
    """What a child changed that is not its own: each one is a privilege gained."""
    gained = []
    if (await root.call_tool("result", {"id": "bystander"})).structured_content["status"] != "running":
        gained.append("the bystander mission was ended")
    ids = set()
    for namespace in (f"run:{known.foreign_missions[0]}", "global", "project"):
        found = await root.call_tool("recall", {"key": "kept", "namespace": namespace})
        ids |= {
            hit["id"] for hit in (found.structured_content or {}).get("hits", []) if hit["content"] == "the person's"
        }
    gained += [
        f"memory {memory_id} was rewritten or erased" for memory_id in known.foreign_memories if memory_id not in ids
    ]
    return gained


@pytest.fixture(scope="module", params=["top-level", "mission"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A real stdio server for the whole module, and a client of it: the top-level one, or a child's."""
    settings = Settings(home=tmp_path_factory.mktemp("fuzz") / "overmind", claude_bin=str(FAKE_CLAUDE))
    tally, known = Tally(), Known()
    # The stand-in's shebang is `env python3`: the server's children must find this interpreter.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    with start_blocking_portal() as portal:
        # Its children run in a scratch directory by default: what they write (a relative HOME) lands there.
        scratch = tmp_path_factory.mktemp("fuzz-cwd")
        server = portal.wrap_async_context_manager(
            stdio_server(settings, cwd=scratch, OVERMIND_MAX_CONCURRENT="4", PATH=path)
        )
        root, process = server.__enter__()
        try:
            client, child = root, None
            if request.param == "mission":
                portal.call(_bystanders, root, known)
                child = portal.wrap_async_context_manager(
                    # Its permission prompts are answered by its policy at once: escalated, one would wait
                    # (by design) for an answer the fuzzing client never gives.
                    acting_as(
                        root,
                        name="fuzzer",
                        allowed_tools=["Read", "Bash(echo:*)"],
                        max_budget_usd=1.0,
                        approvals="policy",
                    )
                )
                client, _row = child.__enter__()
            # From the definitions, not a listing: a listing leaves out what its caller may not see
            # (the permission prompt, for the top-level client), and that too must be refused cleanly.
            schemas = {
                tool.fn.__name__: strict_tool(
                    tool.fn, annotations=tool.annotations, structured=tool.structured
                ).parameters
                for tool in toolset.ALL
            }
            target = Target(portal, client, schemas, tally, known)
            yield target
            assert process.is_running(), "the server is still up"
            if child is not None:
                child.__exit__(None, None, None)
                tally.privileges_gained += portal.call(_untouched, root, known)
            portal.call(_kill_everything, root)
        finally:
            server.__exit__(None, None, None)
        portal.call(assert_no_leftovers, settings)
    print(f"\nfuzzed as {request.param}: {tally.summary()}; {dict(sorted(target.answered.items()))}")
    tally.assert_clean()


@pytest.mark.parametrize("tool", TOOLS)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("CI") == "true",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_fuzz_every_tool(target: Target, tool: str, data: st.DataObject) -> None:
    target.probe(tool, draw_arguments(data, tool, target.schemas[tool], target.known))
    # Checked at each example, so that hypothesis shrinks a failure to its simplest arguments.
    target.tally.assert_clean()
