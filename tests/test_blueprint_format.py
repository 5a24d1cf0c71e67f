"""Blueprints as text: the format, every validation error by name, the plan, templates and `when`.

No server here: these are the checks `blueprint_validate` and `overmind agents` make offline.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from overmind_mcp.blueprints import template
from overmind_mcp.blueprints.plan import layers
from overmind_mcp.blueprints.validate import BlueprintInvalid, check, load
from overmind_mcp.blueprints.when import WhenError, compile_condition

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def problems_of(text: str, **kwargs: object) -> list[str]:
    plan, problems = check(text, **kwargs)  # type: ignore[arg-type]
    assert plan is None, "expected problems"
    return [str(problem) for problem in problems]


ORIGINAL_PIPELINE = """
[agents.setup]
command = "echo setting up"

[agents.build]
command = "echo building"
depends_on = ["setup"]
restart = "on_failure"

[agents.deploy]
command = "echo deploying"
depends_on = ["build"]
cwd = "."
type = "task"
"""

ORIGINAL_CLAUDE = """
[agents.researcher]
command = "Research the history of the bicycle"
provider = "claude"
model = "sonnet"

[agents.writer]
command = "Write an article"
provider = "claude"
depends_on = ["researcher"]

[agents.reviewer]
command = "Review the article"
provider = "claude"
depends_on = ["writer"]
"""


def test_the_originals_schema_is_accepted_as_it_is() -> None:
    pipeline = load(ORIGINAL_PIPELINE)
    assert pipeline.nodes["setup"].shell == "echo setting up"
    assert pipeline.nodes["build"].options["restart"] == "on-failure"
    claude = load(ORIGINAL_CLAUDE, source="/x/claude_pipeline.toml")
    assert claude.name == "claude_pipeline"
    assert claude.nodes["researcher"].prompt == "Research the history of the bicycle"
    assert claude.nodes["researcher"].options == {"model": "sonnet"}
    plan, _ = check(ORIGINAL_CLAUDE)
    assert plan is not None and plan.layers == [["researcher"], ["writer"], ["reviewer"]]


def test_a_duplicated_dependency_is_not_a_cycle() -> None:
    blueprint = load('[agents.a]\ncommand = ["true"]\n[agents.b]\ncommand = ["true"]\ndepends_on = ["a", "a"]\n')
    assert blueprint.nodes["b"].depends_on == ["a"]


def test_independent_agents_share_a_layer() -> None:
    assert layers({"a": [], "b": [], "c": ["a", "b"], "d": ["a"], "e": ["c", "d"]}) == [
        ["a", "b"],
        ["c", "d"],
        ["e"],
    ]


def test_toml_errors_have_their_line_and_column() -> None:
    [problem] = problems_of('name = "x"\n[agents.a]\ncommand = ["true"\nmodel = "x"\n')
    assert problem.startswith("line 4, column")
    assert "not valid TOML" in problem


def test_every_problem_is_reported_at_once_each_by_name() -> None:
    text = """\
name = "demo"
mx_parallel = 3

[vars]
topic = "cats"

[agents.research]
prompt = "Research {{ vars.topc }}"
modle = "opus"

[agents.write]
prompt = "Write from {{ nodes.reserch.result }} and {{ nodes.research.resul }}"
depends_on = ["research", "reviw"]

[agents.review]
prompt = "Review {{ nodes.edit.result }}"
depends_on = ["edit"]

[agents.edit]
prompt = "Edit {{ nodes.publish.result }}"
depends_on = ["review"]

[agents.empty]
provider = "raw"

[agents.both]
prompt = "x"
command = ["true"]

[agents.shell]
command = "echo {{ vars.topic }}"

[agents.gate]
command = ["true"]
depends_on = ["research"]
when = "__import__('os').system('id')"
on_failure = "skp"
retry = { attempts = 0, bogus = 1 }
output_schema = { type = "objekt" }
"""
    problems = problems_of(text)
    expected = [
        "line 2, mx_parallel: unknown key (did you mean 'max_parallel'?)",
        "line 9, agents.research.modle: unknown key (did you mean 'model'?)",
        "line 13, agents.write.depends_on: unknown agent 'reviw' (did you mean 'review'?)",
        "line 23, agents.empty: missing prompt or command",
        "line 26, agents.both: give a prompt (a Claude agent) or a command, not both",
        "line 31, agents.shell.command: a string command runs under sh -c exactly as written",
        "line 38, agents.gate.retry.attempts: Input should be greater than or equal to 1",
        "line 38, agents.gate.retry.bogus: unknown key",
        "line 37, agents.gate.on_failure: 'skp' is not a policy (did you mean 'skip'?)",
        "line 39, agents.gate.output_schema: not a valid JSON Schema",
        "line 21, agents.edit.depends_on: cycle: edit → review → edit",
        "line 8, agents.research.prompt: {{ vars.topc }}: no variable 'topc' in [vars] (did you mean 'topic'?)",
        "line 12, agents.write.prompt: {{ nodes.reserch.result }}: no agent 'reserch' (did you mean 'research'?)",
        "line 12, agents.write.prompt: {{ nodes.research.resul }}: an agent has no 'resul' (did you mean 'result'?)",
        "line 20, agents.edit.prompt: {{ nodes.publish.result }}: no agent 'publish'",
        "line 36, agents.gate.when: when: \"__import__('os').system('id')\" is not allowed",
    ]
    for start in expected:
        assert any(problem.startswith(start) for problem in problems), f"missing: {start}\n" + "\n".join(problems)
    assert len(problems) == len(expected), "\n".join(problems)


def test_a_template_may_read_only_what_the_agent_depends_on() -> None:
    text = '[agents.a]\nprompt = "x"\n[agents.b]\nprompt = "y {{ nodes.a.result }}"\n'
    [problem] = problems_of(text)
    assert "'a' is not a dependency of 'b': add it to depends_on" in problem
    # Through another dependency is fine: the value is there before b starts.
    through = text.replace('"\n[agents.b]', '"\n[agents.m]\nprompt = "m"\ndepends_on = ["a"]\n[agents.b]')
    load(through + 'depends_on = ["m"]\n')


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ('prompt = "{{ agents.a.result }}"', "'agents' names nothing (did you mean 'nodes'?)"),
        ('prompt = "{{ nodes.a }}"', "say which part: result, output"),
        ('prompt = "{{ nodes.a.result.x }}"', "only output has parts"),
        ('prompt = "{{ item }}"', "only an agent with foreach has an item"),
        ('prompt = "{{ run.pid }}"', "the run has id, name"),
        ('prompt = "{{ nodes.a.result"', "an opening {{ has no closing }}"),
        ('prompt = "{{ nodes..a }}"', "is not a reference"),
        ('foreach = "items: {{ nodes.a.output }}"\nprompt = "{{ item }}"', "must be one reference to a list"),
        ('prompt = "x"\nmax_parallel = 2', "this agent has none"),
        ('command = ["true"]\nargs = ["x"]', "args are the positional parameters"),
        ('command = ["true"]\nmodel = "opus"', "model only apply to Claude tasks"),
        ('prompt = "x"\ntype = "session"', "a session never ends by itself"),
        ('prompt = "x"\nprovider = "claud"', "unknown provider 'claud' (did you mean 'claude'?)"),
        ('prompt = "x"\nenv = { OVERMIND_X = "1" }', "OVERMIND_* are reserved"),
        ('prompt = "x"\ntimeout_s = -1', "Input should be greater than 0"),
    ],
)
def test_each_node_problem_is_named(snippet: str, message: str) -> None:
    text = f'[agents.a]\nprompt = "a"\n[agents.b]\ndepends_on = ["a"]\n{snippet}\n'
    problems = problems_of(text)
    assert any(message in problem and "agents.b" in problem for problem in problems), problems


def test_blueprint_wide_settings_and_run_variables() -> None:
    text = """
max_parallel = 2
[budget]
usd = 1.5
turns = 40
time_s = 600
[vars]
topic = "cats"
[defaults]
model = "haiku"
env = { A = "1" }
[agents.a]
prompt = "About {{ vars.topic }}"
env = { B = "2" }
"""
    blueprint = load(text, run_vars={"topic": "dogs"})
    assert blueprint.vars == {"topic": "dogs"}
    assert blueprint.max_parallel == 2
    assert (blueprint.budget.usd, blueprint.budget.turns, blueprint.budget.time_s) == (1.5, 40, 600)
    assert blueprint.nodes["a"].options == {"model": "haiku", "env": {"A": "1", "B": "2"}}
    with pytest.raises(BlueprintInvalid) as raised:
        load(text, run_vars={"topik": "dogs"})
    assert "vars.topik: not declared in the blueprint's [vars] (did you mean 'topic'?)" in str(raised.value)
    problems = problems_of(text.replace("usd = 1.5", "dollars = 1.5").replace("[defaults]", "[defaults]\nwhen = 'x'"))
    assert any("budget.dollars: unknown key" in problem for problem in problems)
    assert any("when belongs to each agent, not to [defaults]" in problem for problem in problems)


def test_an_empty_file_says_what_to_add() -> None:
    assert problems_of("") == ["agents: no agents: add one [agents.<name>] table for each agent"]


def test_templates_render_values_and_name_what_is_missing() -> None:
    scope = {
        "nodes": {"plan": {"result": "text", "output": {"items": ["a", "b"], "n": 2}}},
        "vars": {"topic": "cats"},
        "item": {"file": "x.py"},
    }
    rendered = template.render("{{ vars.topic }} {{ nodes.plan.output.items }} {{ nodes.plan.output.items[1] }}", scope)
    assert rendered == 'cats ["a","b"] b'
    assert template.render("{{ item.file }}", scope) == "x.py"
    with pytest.raises(template.TemplateError, match=r"nodes.plan.output has no 'itemz' \(it has: items, n\)"):
        template.render("{{ nodes.plan.output.itemz }}", scope)
    with pytest.raises(template.TemplateError, match="it is a list of 2"):
        template.render("{{ nodes.plan.output.items.5 }}", scope)


def test_when_is_a_small_language_evaluated_without_eval() -> None:
    scope = {
        "nodes": {"tests": {"status": "failed", "output": {"failures": ["a", "b"], "ok": False}}},
        "vars": {"mode": "fix"},
    }
    assert compile_condition("nodes.tests.status == 'failed' and vars.mode in ['fix', 'both']").holds(scope)
    assert compile_condition("len(nodes.tests.output.failures) > 1 and not nodes.tests.output.ok").holds(scope)
    assert not compile_condition("nodes.tests.output.failures[0] == 'b' or false").holds(scope)
    assert compile_condition("-1 < 0 <= 0").holds(scope)
    for refused in (
        "__import__('os')",
        "nodes.tests.status.upper()",
        "open('/etc/passwd')",
        "[x for x in vars]",
        "lambda: 1",
        "vars.mode + 'x'",
        "globals",
        "nodes.tests.__class__",
    ):
        with pytest.raises(WhenError):
            compile_condition(refused).holds(scope)
    with pytest.raises(WhenError, match="has no 'missing'"):
        compile_condition("nodes.tests.output.missing == 1").holds(scope)


def test_the_examples_are_valid() -> None:
    examples = sorted(EXAMPLES.glob("*.toml"))
    assert len(examples) >= 5
    for path in examples:
        plan, problems = check(path.read_text(), source=str(path))
        assert plan is not None, f"{path.name}: {[str(problem) for problem in problems]}"
