"""From TOML text to a valid Blueprint, or to every problem with it at once, each by name.

A problem names where it is (`agents.write.depends_on`), what is wrong, and what to do; it
has the line (and for TOML syntax the column) when the text shows it. Checked: TOML syntax,
unknown keys (with the nearest known one), values of the wrong type, unknown dependencies,
cycles (with their path), nodes with neither prompt nor command (or both), template
references to nothing (or to a node that is not a dependency), `when` expressions outside
the language, output schemas that are not JSON Schema. A dependency named twice counts once:
it is not a cycle.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from overmind_mcp.blueprints import template
from overmind_mcp.blueprints.plan import Plan, ancestors, layers, plan_of
from overmind_mcp.blueprints.spec import SPAWN_OPTIONS, Blueprint, Budget, Node, Retry
from overmind_mcp.blueprints.when import WhenError, compile_condition
from overmind_mcp.errors import InvalidRequest
from overmind_mcp.models import SpawnRequest
from overmind_mcp.supervision import limits

BLUEPRINT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,23}")
NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,27}")
"""Short enough that `<run>.<node>.<item>` is a mission name (64 characters at most)."""
MAX_FOREACH_ITEMS = 9999

TOP_KEYS = ("name", "description", "max_parallel", "budget", "vars", "defaults", "agents")
NODE_KEYS = (
    "prompt",
    "command",
    "provider",
    "type",
    "args",
    "depends_on",
    "output_schema",
    "foreach",
    "max_parallel",
    "when",
    "retry",
    "on_failure",
    *sorted(SPAWN_OPTIONS),
)
# What [defaults] cannot give every node: what makes a node the node it is.
_NOT_DEFAULTS = frozenset({"prompt", "command", "provider", "type", "args", "depends_on", "foreach", "when"})
PROVIDERS = ("claude", "command", "raw")
ON_FAILURE = ("fail", "skip", "continue")
# The fields templates may fill in (each value on its own: never a shell's command line).
_TEMPLATED = ("append_system_prompt", "cwd")
M = TypeVar("M", bound=BaseModel)
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


class Problem(BaseModel):
    """One thing wrong with a blueprint."""

    where: str
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        position = f"line {self.line}" + (f", column {self.column}" if self.column else "") if self.line else ""
        location = ", ".join(part for part in (position, self.where) if part)
        return f"{location}: {self.message}" if location else self.message


class BlueprintInvalid(InvalidRequest):
    """A blueprint with problems; `problems` lists all of them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        listed = "\n".join(f"- {problem}" for problem in problems)
        super().__init__(f"the blueprint has {len(problems)} problem{'s' * (len(problems) != 1)}:\n{listed}")


def read_source(path: str | None, toml: str | None, *, base: Path) -> tuple[str, str | None]:
    """The blueprint's text and its file (None when given inline); exactly one of the two is given.

    A relative path is relative to `base` (the project).
    """
    if (path is None) == (toml is None):
        raise InvalidRequest("give exactly one of `path` (a blueprint file) or `toml` (its text)")
    if toml is not None:
        return toml, None
    assert path is not None
    if "\x00" in path:
        raise InvalidRequest("a blueprint path cannot hold a NUL byte")
    file = base / Path(path).expanduser()
    try:
        return file.read_text(encoding="utf-8"), str(file.resolve())
    except FileNotFoundError:
        raise InvalidRequest(f"no blueprint file at {path!r}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"cannot read the blueprint {path!r}: {exc}") from None


def load(text: str, *, source: str | None = None, run_vars: Mapping[str, Any] | None = None) -> Blueprint:
    """The blueprint in `text`, checked; raises BlueprintInvalid with every problem found."""
    checker = _Checker(text, source)
    blueprint = checker.check(run_vars or {})
    if checker.problems or blueprint is None:
        raise BlueprintInvalid(checker.problems)
    return blueprint


def check(text: str, *, source: str | None = None) -> tuple[Plan | None, list[Problem]]:
    """The plan, or every problem (what `blueprint_validate` answers)."""
    try:
        return plan_of(load(text, source=source)), []
    except BlueprintInvalid as invalid:
        return None, invalid.problems


def nearest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest choice, or ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Checker:
    def __init__(self, text: str, source: str | None) -> None:
        self.text = text
        self.source = source
        self.problems: list[Problem] = []
        self._locate = _Locator(text)
        self._agent_names: set[str] = set()
        self._drafts: list[_Draft] = []

    def problem(self, where: tuple[str, ...], message: str) -> None:
        self.problems.append(Problem(where=".".join(where), message=message, line=self._locate.line_of(where)))

    def check(self, run_vars: Mapping[str, Any]) -> Blueprint | None:
        try:
            data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            position = _TOML_POSITION.search(message)
            line, column = (int(position.group(1)), int(position.group(2))) if position else (None, None)
            self.problems.append(
                Problem(
                    where="", message=f"not valid TOML: {_TOML_POSITION.sub('', message)}", line=line, column=column
                )
            )
            return None
        for key in data:
            if key not in TOP_KEYS:
                self.problem((key,), f"unknown key{nearest(key, TOP_KEYS)}; a blueprint has {', '.join(TOP_KEYS)}")
        name = self._name(data.get("name"))
        description = self._typed(("description",), data.get("description"), str, "a string")
        max_parallel = self._positive_int(("max_parallel",), data.get("max_parallel"))
        budget = self._model(("budget",), Budget, data.get("budget", {}))
        declared = self._typed(("vars",), data.get("vars", {}), dict, "a table of variables and their defaults") or {}
        for key in run_vars:
            if key not in declared:
                self.problems.append(
                    Problem(
                        where=f"vars.{key}",
                        message=f"not declared in the blueprint's [vars]{nearest(key, declared)}; "
                        f"it declares: {', '.join(sorted(declared)) or 'none'}",
                    )
                )
        variables = {**declared, **run_vars}
        defaults = self._defaults(data.get("defaults", {}))
        agents = data.get("agents")
        if not isinstance(agents, dict) or not agents:
            self.problem(("agents",), "no agents: add one [agents.<name>] table for each agent")
            return None
        self._agent_names = set(agents)
        nodes: dict[str, Node] = {}
        # Every agent's dependencies, even an agent with other problems: the graph is checked whole.
        graph: dict[str, list[str]] = {}
        for node_name, table in agents.items():
            node = self._node(node_name, table, defaults, graph)
            if node is not None:
                nodes[node_name] = node
        self._cycles(graph)
        for draft in self._drafts:
            self._references(draft, graph, variables)
        if self.problems or budget is None:
            return None
        return Blueprint(
            name=name,
            description=description,
            max_parallel=max_parallel,
            budget=budget,
            vars=variables,
            nodes=nodes,
        )

    # -- the blueprint's own keys -----------------------------------------------------------------

    def _name(self, value: Any) -> str:
        if value is None:
            stem = Path(self.source).stem if self.source else "blueprint"
            return re.sub(r"[^A-Za-z0-9_-]", "-", stem).strip("-_")[:24] or "blueprint"
        if not isinstance(value, str) or not BLUEPRINT_NAME.fullmatch(value):
            self.problem(("name",), "use 1-24 letters, digits, '_' or '-', starting with a letter or digit")
            return "blueprint"
        return value

    def _defaults(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.problem(("defaults",), "must be a table of node options")
            return {}
        allowed = [key for key in NODE_KEYS if key not in _NOT_DEFAULTS]
        kept = {}
        for key, option in value.items():
            if key in allowed:
                kept[key] = option
            elif key in NODE_KEYS:
                self.problem(("defaults", key), f"{key} belongs to each agent, not to [defaults]")
            else:
                self.problem(("defaults", key), f"unknown option{nearest(key, allowed)}")
        return kept

    # -- one node -------------------------------------------------------------------------------

    def _node(self, name: str, table: Any, defaults: dict[str, Any], graph: dict[str, list[str]]) -> Node | None:
        """The node, or None if it has problems; its dependencies go in `graph` either way."""
        where = ("agents", name)
        graph[name] = []
        before = len(self.problems)
        if not NODE_NAME.fullmatch(name):
            self.problem(where, "bad agent name: use 1-28 letters, digits, '_' or '-', starting with a letter or digit")
        if not isinstance(table, dict):
            self.problem(where, "must be a table: [agents.<name>] with a prompt or a command")
            return None
        names = self._agent_names
        for key in table:
            if key not in NODE_KEYS:
                self.problem((*where, key), f"unknown key{nearest(key, NODE_KEYS)}")
        merged = {**defaults, **table}
        if isinstance(defaults.get("env"), dict) and isinstance(table.get("env"), dict):
            merged["env"] = {**defaults["env"], **table["env"]}
        self._drafts.append(_Draft.of(name, merged))
        provider = merged.get("provider")
        if provider is not None and provider not in PROVIDERS:
            self.problem((*where, "provider"), f"unknown provider {provider!r}{nearest(str(provider), PROVIDERS)}")
        kind = merged.get("type", "task")
        if kind == "session":
            self.problem(
                (*where, "type"),
                'a session never ends by itself, so nothing could depend on it: use type = "task" '
                "(or spawn a live session with the spawn tool)",
            )
        elif kind != "task":
            self.problem((*where, "type"), f'unknown type {kind!r}: use "task"')
        prompt, argv, shell = self._task(where, merged)
        args = self._string_list((*where, "args"), merged.get("args", []))
        if args and shell is None:
            self.problem((*where, "args"), "args are the positional parameters ($1, $2…) of a string command")
        depends_on = graph[name] = self._depends_on(where, merged.get("depends_on", []), names)
        options = {key: merged[key] for key in SPAWN_OPTIONS if key in merged}
        if options.get("restart") == "on_failure":
            options["restart"] = "on-failure"  # the original's spelling
        self._spawn_options(where, options, claude=prompt is not None)
        schema = merged.get("output_schema")
        if schema is not None:
            self._schema((*where, "output_schema"), schema)
        foreach = merged.get("foreach")
        if foreach is not None and not isinstance(foreach, str | list):
            self.problem((*where, "foreach"), "must be a list, or a reference to one such as {{ nodes.plan.output }}")
        max_parallel = self._positive_int((*where, "max_parallel"), merged.get("max_parallel"))
        if max_parallel is not None and foreach is None:
            self.problem((*where, "max_parallel"), "limits how many foreach items run at once; this agent has none")
        when = self._typed((*where, "when"), merged.get("when"), str, "an expression in a string")
        retry_value = merged.get("retry")
        if isinstance(retry_value, int) and not isinstance(retry_value, bool):
            retry_value = {"attempts": retry_value}
        retry = self._model((*where, "retry"), Retry, retry_value) if retry_value is not None else None
        on_failure = merged.get("on_failure", "fail")
        if on_failure not in ON_FAILURE:
            self.problem(
                (*where, "on_failure"),
                f"{on_failure!r} is not a policy{nearest(str(on_failure), ON_FAILURE)}: use fail, skip or continue",
            )
        if len(self.problems) > before:
            return None
        return Node(
            name=name,
            prompt=prompt,
            command=argv,
            shell=shell,
            args=args,
            depends_on=depends_on,
            output_schema=schema,
            foreach=foreach,
            max_parallel=max_parallel,
            when=when,
            retry=retry,
            on_failure=on_failure,
            options=options,
        )

    def _task(self, where: tuple[str, ...], table: dict[str, Any]) -> tuple[str | None, list[str] | None, str | None]:
        """(prompt, argv, shell script): what the node runs."""
        prompt, command, provider = table.get("prompt"), table.get("command"), table.get("provider")
        if prompt is not None and command is not None:
            self.problem(where, "give a prompt (a Claude agent) or a command, not both")
            return None, None, None
        if provider == "claude" and isinstance(command, str):
            prompt, command = command, None  # the original's form: a Claude agent's command is its prompt
        if prompt is None and command is None:
            self.problem(where, 'missing prompt or command: add prompt = "…" (a Claude agent) or command = […]')
            return None, None, None
        if prompt is not None:
            if provider in ("command", "raw"):
                self.problem((*where, "provider"), f"a {provider} agent runs a command, not a prompt")
            elif not isinstance(prompt, str) or not prompt.strip():
                self.problem((*where, "prompt"), "must be a non-empty string: say what the agent should do")
            else:
                return prompt, None, None
            return None, None, None
        if provider == "claude":
            self.problem((*where, "command"), "a claude agent's command is its prompt, a string: or use prompt = …")
        elif isinstance(command, str):
            if not command.strip():
                self.problem((*where, "command"), "is empty")
            elif template.has_refs(command):
                self.problem(
                    (*where, "command"),
                    "a string command runs under sh -c exactly as written, so it cannot hold {{ … }}: "
                    'pass the value as args = ["{{ … }}"] and read $1, or as env = { NAME = "{{ … }}" }',
                )
            else:
                return None, None, command
        elif isinstance(command, list) and command and all(isinstance(part, str) for part in command):
            if not command[0]:
                self.problem((*where, "command"), "the program (its first element) is empty")
            else:
                return None, command, None
        else:
            self.problem((*where, "command"), 'must be a string (run by sh -c) or a non-empty argv list ["prog", …]')
        return None, None, None

    def _depends_on(self, where: tuple[str, ...], value: Any, names: set[str]) -> list[str]:
        if isinstance(value, str):
            value = [value]
        deps = self._string_list((*where, "depends_on"), value)
        for dep in deps:
            if dep not in names:
                self.problem((*where, "depends_on"), f"unknown agent {dep!r}{nearest(dep, names)}")
        return list(dict.fromkeys(deps))  # a dependency named twice is one dependency

    def _spawn_options(self, where: tuple[str, ...], options: dict[str, Any], *, claude: bool) -> None:
        task = {"prompt": "-"} if claude else {"command": ["-"]}
        try:
            request = SpawnRequest.model_validate({**options, **task})
        except ValidationError as exc:
            for error in exc.errors():
                key = str(error["loc"][0]) if error["loc"] else ""
                self.problem((*where, key) if key else where, error["msg"])
            return
        try:
            limits.task_kind(request)
        except InvalidRequest as exc:
            self.problem(where, str(exc))

    def _schema(self, where: tuple[str, ...], schema: Any) -> None:
        if not isinstance(schema, dict):
            self.problem(where, 'must be a table: a JSON Schema, such as { type = "object", required = ["items"] }')
            return
        import jsonschema  # on first use: most blueprints have no schema, and loading it slows every start

        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.exceptions.SchemaError as exc:
            path = ".".join(str(part) for part in exc.absolute_path)
            self.problem(where, f"not a valid JSON Schema{f' at {path}' if path else ''}: {exc.message}")

    # -- the graph -------------------------------------------------------------------------------

    def _cycles(self, graph: dict[str, list[str]]) -> None:
        # Unknown dependencies are reported already; here they would only hide what depends on them.
        depends_on = {name: [dep for dep in deps if dep in graph] for name, deps in graph.items()}
        placed = {name for layer in layers(depends_on) for name in layer}
        for cycle in _cycles_among({name: deps for name, deps in depends_on.items() if name not in placed}):
            self.problem(("agents", cycle[0], "depends_on"), f"cycle: {' → '.join([*cycle, cycle[0]])}")

    def _references(self, draft: _Draft, graph: dict[str, list[str]], variables: Mapping[str, Any]) -> None:
        where = ("agents", draft.name)
        upstream = ancestors(graph, draft.name)
        for key, text in draft.texts:
            try:
                found = template.refs(text)
            except template.TemplateError as exc:
                self.problem((*where, key), str(exc))
                continue
            for ref in found:
                self._reference((*where, key), ref, draft, upstream, variables)
        if isinstance(draft.foreach, str):
            self._foreach(where, draft, upstream, variables)
        if isinstance(draft.when, str):
            try:
                condition = compile_condition(draft.when)
            except WhenError as exc:
                self.problem((*where, "when"), str(exc))
            else:
                for ref in condition.refs:
                    self._reference((*where, "when"), ref, draft, upstream, variables)

    def _foreach(
        self,
        where: tuple[str, ...],
        draft: _Draft,
        upstream: set[str],
        variables: Mapping[str, Any],
    ) -> None:
        assert isinstance(draft.foreach, str)
        try:
            ref = template.only_ref(draft.foreach)
        except template.TemplateError as exc:
            self.problem((*where, "foreach"), str(exc))
            return
        if ref is None or ref.root not in ("nodes", "vars"):
            self.problem((*where, "foreach"), "must be one reference to a list, such as {{ nodes.plan.output.items }}")
            return
        self._reference((*where, "foreach"), ref, draft, upstream, variables, in_foreach=True)

    def _reference(
        self,
        where: tuple[str, ...],
        ref: template.Ref,
        draft: _Draft,
        upstream: set[str],
        variables: Mapping[str, Any],
        *,
        in_foreach: bool = False,
    ) -> None:
        text = f"{{{{ {ref.text} }}}}"
        if ref.root not in template.ROOTS:
            suggestion = "nodes" if ref.root == "agents" else None
            hint = f" (did you mean {suggestion!r}?)" if suggestion else nearest(ref.root, template.ROOTS)
            self.problem(where, f"{text}: {ref.root!r} names nothing{hint}; use nodes., vars., item or run.")
            return
        if ref.root == "nodes":
            self._node_reference(where, text, ref, draft.name, upstream)
        elif ref.root == "vars":
            if not ref.path or str(ref.path[0]) not in variables:
                name = str(ref.path[0]) if ref.path else ""
                self.problem(
                    where,
                    f"{text}: no variable {name!r} in [vars]{nearest(name, variables)}; declare it with a default",
                )
        elif ref.root in ("item", "index"):
            if draft.foreach is None or in_foreach:
                self.problem(where, f"{text}: only an agent with foreach has an {ref.root}")
            elif ref.root == "index" and ref.path:
                self.problem(where, f"{text}: index is a number; it has no parts")
        elif ref.root == "attempt":
            if ref.path:
                self.problem(where, f"{text}: attempt is a number; it has no parts")
        elif ref.root == "run" and (len(ref.path) != 1 or ref.path[0] not in template.RUN_FIELDS):
            self.problem(where, f"{text}: the run has {', '.join(template.RUN_FIELDS)}")

    def _node_reference(
        self,
        where: tuple[str, ...],
        text: str,
        ref: template.Ref,
        name: str,
        upstream: set[str],
    ) -> None:
        other = ref.node
        if other is None:
            self.problem(where, f"{text}: say which agent, e.g. nodes.<name>.result")
            return
        if other not in self._agent_names:
            self.problem(where, f"{text}: no agent {other!r}{nearest(other, self._agent_names)}")
            return
        if other == name:
            self.problem(where, f"{text}: an agent cannot read its own outcome")
            return
        if other not in upstream:
            self.problem(where, f"{text}: {other!r} is not a dependency of {name!r}: add it to depends_on")
        if len(ref.path) < 2:
            self.problem(where, f"{text}: say which part: {', '.join(template.NODE_FIELDS)}")
            return
        field = str(ref.path[1])
        if field not in template.NODE_FIELDS:
            self.problem(
                where,
                f"{text}: an agent has no {field!r}{nearest(field, template.NODE_FIELDS)}; "
                f"use {', '.join(template.NODE_FIELDS)}",
            )
        elif field != "output" and len(ref.path) > 2:
            self.problem(where, f"{text}: only output has parts ({field} is a single value)")

    # -- values ---------------------------------------------------------------------------------

    def _typed(self, where: tuple[str, ...], value: Any, kind: type, description: str) -> Any:
        if value is not None and not isinstance(value, kind):
            self.problem(where, f"must be {description}")
            return None
        return value

    def _positive_int(self, where: tuple[str, ...], value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.problem(where, "must be a whole number, 1 or more")
            return None
        return value

    def _string_list(self, where: tuple[str, ...], value: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.problem(where, "must be a list of strings")
            return []
        return value

    def _model(self, where: tuple[str, ...], model: type[M], value: Any) -> M | None:
        if not isinstance(value, dict):
            self.problem(where, "must be a table")
            return None
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            for error in exc.errors():
                loc = tuple(str(part) for part in error["loc"][:1])
                message = error["msg"]
                if error["type"] == "extra_forbidden":
                    message = f"unknown key{nearest(loc[0], model.model_fields)}; use {', '.join(model.model_fields)}"
                self.problem((*where, *loc), message)
            return None


@dataclass(frozen=True, slots=True)
class _Draft:
    """What an agent's templates and conditions say, read even from an agent with other problems."""

    name: str
    texts: list[tuple[str, str]]
    foreach: Any
    when: Any

    @classmethod
    def of(cls, name: str, table: Mapping[str, Any]) -> _Draft:
        texts = [(key, value) for key in ("prompt", *_TEMPLATED) if isinstance(value := table.get(key), str)]
        command = table.get("command")
        if isinstance(command, list):
            texts += [("command", part) for part in command if isinstance(part, str)]
        if isinstance(command, str) and table.get("provider") == "claude":
            texts.append(("command", command))
        args = table.get("args")
        if isinstance(args, list):
            texts += [("args", part) for part in args if isinstance(part, str)]
        env = table.get("env")
        if isinstance(env, dict):
            texts += [("env", value) for value in env.values() if isinstance(value, str)]
        return cls(name, texts, table.get("foreach"), table.get("when"))


def _cycles_among(depends_on: Mapping[str, list[str]]) -> list[list[str]]:
    """One cycle through each strongly connected group of `depends_on` (the nodes left out of the layers)."""
    cycles: list[list[str]] = []
    covered: set[str] = set()
    for start in sorted(depends_on):
        if start in covered:
            continue
        path = _cycle_from(start, depends_on)
        if path is not None:
            cycles.append(path)
            covered.update(path)
    return cycles


def _cycle_from(start: str, depends_on: Mapping[str, list[str]]) -> list[str] | None:
    """The shortest path from `start` back to itself (breadth first), or None if there is none."""
    previous: dict[str, str] = {}
    frontier = [start]
    seen = {start}
    while frontier:
        following = []
        for name in frontier:
            for dep in depends_on.get(name, []):
                if dep == start:
                    path = [name]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return list(reversed(path))
                if dep in depends_on and dep not in seen:
                    seen.add(dep)
                    previous[dep] = name
                    following.append(dep)
        frontier = following
    return None


class _Locator:
    """The line of a table or key in the text, when the text has it as a `[table]` header and `key = …`."""

    _HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")

    def __init__(self, text: str) -> None:
        self._lines = text.splitlines()
        self._headers: list[tuple[int, tuple[str, ...]]] = []
        for number, line in enumerate(self._lines, start=1):
            match = self._HEADER.match(line)
            if match:
                self._headers.append((number, _dotted(match.group(1))))

    def line_of(self, where: tuple[str, ...]) -> int | None:
        # The deepest table that is written as a header, then the key inside it.
        for cut in range(len(where), -1, -1):
            table, keys = where[:cut], where[cut:]
            start = 0 if not table else next((n for n, name in self._headers if name == table), None)
            if start is None:
                continue
            if not keys:
                return start or None
            end = next((n for n, _name in self._headers if n > start), len(self._lines) + 1)
            key = re.compile(rf"^\s*[\"']?{re.escape(keys[0])}[\"']?\s*[=.]")
            for number in range(start + 1, end):
                if key.match(self._lines[number - 1]):
                    return number
            return start or None
        return None


def _dotted(header: str) -> tuple[str, ...]:
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([^.\s]+)', header)
    return tuple(next(part for part in groups if part) for groups in parts)
