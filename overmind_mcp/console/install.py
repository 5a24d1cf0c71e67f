"""`overmind install`: register the server with Claude Code and install the `/overmind` skill.

Registration is `claude mcp add -s user overmind -- <absolute path of overmind-mcp>`, run
as an argv list (never a shell string); the skill is copied to ~/.claude/skills/overmind/.
`--dry-run` prints both steps and does neither.

`--service` instead writes a systemd user unit that runs `overmind-mcp serve --headless`, for
machines where no Claude Code session is open to own a server: it fires the rituals and
carries out the `overmind` command's requests.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from overmind_mcp.console import render
from overmind_mcp.console.common import CliError, Exit
from overmind_mcp.console.render import Out
from overmind_mcp.settings import Settings

SERVER_NAME = "overmind"
_TIMEOUT_S = 60


def default_skill_file() -> Path:
    """The skill the package ships (prompts/ is `overmind_mcp.prompts`), else the source tree's copy."""
    from importlib import resources

    try:
        shipped = resources.files("overmind_mcp.prompts").joinpath("skills", "overmind", "SKILL.md")
        if shipped.is_file():
            return Path(str(shipped))
    except ModuleNotFoundError:
        pass
    import overmind_mcp

    return Path(overmind_mcp.__file__).resolve().parent.parent / "prompts" / "skills" / "overmind" / "SKILL.md"


def server_command() -> Path:
    """The `overmind-mcp` beside this interpreter (the same environment), else the one on PATH."""
    beside = Path(sys.executable).parent / "overmind-mcp"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("overmind-mcp")
    if found is None:
        raise CliError("cannot find the overmind-mcp command: install the package (pip install overmind-mcp) first")
    return Path(found).resolve()


SERVICE_NAME = "overmind-mcp.service"


def install(settings: Settings, args: argparse.Namespace) -> int:
    out = Out(json_mode=args.json)
    if args.service:
        return _install_service(settings, args, out)
    claude = shutil.which(settings.claude_bin)
    if claude is None:
        raise CliError(
            f"no Claude Code CLI at {settings.claude_bin!r}: install it (npm install -g @anthropic-ai/claude-code) "
            "or set OVERMIND_CLAUDE_BIN"
        )
    skill = Path(args.skill_file).expanduser() if args.skill_file else default_skill_file()
    if not skill.is_file():
        raise CliError(
            f"the /overmind skill is missing: {skill} does not exist "
            "(it ships with the source checkout; pass --skill-file PATH to install another copy)"
        )
    target = Path.home() / ".claude" / "skills" / "overmind" / "SKILL.md"
    add = [claude, "mcp", "add", "-s", args.scope, SERVER_NAME]
    if getattr(args, "home", None) or os.environ.get("OVERMIND_HOME"):
        # -e goes after the name: it takes several values and would swallow the name otherwise.
        add += ["-e", f"OVERMIND_HOME={settings.home}"]
    add += ["--", str(server_command())]
    remove = [claude, "mcp", "remove", "-s", args.scope, SERVER_NAME]

    done: list[str] = []
    if args.dry_run:
        done.append(f"would run: {shlex.join(add)}")
        done.append(f"would copy {skill} to {target}")
    else:
        done.append(_register(add, remove, force=args.force))
        done.append(_copy_skill(skill, target, force=args.force))
    if args.json:
        out.json(
            {"dry_run": args.dry_run, "register": add, "skill": {"from": str(skill), "to": str(target)}, "done": done}
        )
    else:
        for line in done:
            out.line(line)
        if not args.dry_run:
            render.note("restart Claude Code to load the server; /overmind then shows how to use it")
    return Exit.OK


def _register(add: list[str], remove: list[str], *, force: bool) -> str:
    answer = _run(add)
    if answer.returncode != 0 and "already exists" in answer.stderr + answer.stdout:
        if not force:
            raise CliError(f"Claude Code already has an MCP server named {SERVER_NAME!r}; --force replaces it")
        if (removed := _run(remove)).returncode != 0:
            raise CliError(f"{shlex.join(remove)} failed: {_said(removed)}")
        answer = _run(add)
    if answer.returncode != 0:
        raise CliError(f"{shlex.join(add)} failed: {_said(answer)}")
    return f"registered: {shlex.join(add)}"


def _copy_skill(skill: Path, target: Path, *, force: bool) -> str:
    content = skill.read_bytes()
    if target.exists():
        if target.read_bytes() == content:
            return f"skill up to date: {target}"
        if not force:
            raise CliError(f"{target} exists and differs from {skill}; --force replaces it")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside and renamed: a reader never sees half a file.
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(content)
    partial.replace(target)
    return f"skill installed: {target}"


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CliError(f"{shlex.join(argv)} did not run: {exc}") from None


def _said(answer: subprocess.CompletedProcess[str]) -> str:
    return (answer.stderr or answer.stdout).strip()[:500] or f"exit code {answer.returncode}"


# -- the systemd user service ----------------------------------------------------------------------


def service_unit(settings: Settings, server: Path, path_variable: str) -> str:
    """The unit file of a headless server on `settings.home`."""
    claude = shutil.which(settings.claude_bin, path=path_variable) or settings.claude_bin
    environment = {"OVERMIND_HOME": str(settings.home), "OVERMIND_CLAUDE_BIN": claude, "PATH": path_variable}
    # Each gentle signal gets the grace, then SIGKILL; systemd waits that long and a little more.
    stop_s = int(settings.kill_grace_s * 2) + 15
    lines = [
        "# Written by `overmind install --service`: an overmind-mcp server with no MCP client of its own.",
        "# It fires rituals and carries out the overmind command's requests while no Claude Code session runs.",
        "[Unit]",
        f"Description=overmind-mcp, headless, on {_escape_specifiers(str(settings.home))}",
        "",
        "[Service]",
        "Type=exec",
        f"ExecStart={_quote(str(server), exec_line=True)} serve --headless",
        *(f"Environment={_quote(f'{name}={value}')}" for name, value in environment.items()),
        "Restart=on-failure",
        "RestartSec=5",
        "# The server ends its own children on SIGTERM (each process group: SIGINT, SIGTERM, SIGKILL), and",
        "# detached missions must outlive a restart: systemd signals the server process alone.",
        "KillMode=process",
        f"TimeoutStopSec={stop_s}",
        "",
        "[Install]",
        "WantedBy=default.target",
    ]
    return "\n".join(lines) + "\n"


def service_path() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "systemd" / "user" / SERVICE_NAME


def _install_service(settings: Settings, args: argparse.Namespace, out: Out) -> int:
    unit = service_unit(settings, server_command(), os.environ.get("PATH", os.defpath))
    target = service_path()
    steps = [
        "systemctl --user daemon-reload",
        f"systemctl --user enable --now {SERVICE_NAME}",
        "loginctl enable-linger  # to keep it running while you are logged out",
    ]
    if args.dry_run:
        done = f"would write {target}"
    elif target.exists() and target.read_text() == unit:
        done = f"service up to date: {target}"
    elif target.exists() and not args.force:
        raise CliError(f"{target} exists and differs; --force replaces it")
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.write_text(unit)
        partial.replace(target)
        done = f"service written: {target}"
    if args.json:
        out.json({"dry_run": args.dry_run, "unit": str(target), "content": unit, "done": done, "next": steps})
        return Exit.OK
    out.line(done)
    if args.dry_run:
        out.line(unit)
    render.note("then: " + "; ".join(steps))
    return Exit.OK


def _escape_specifiers(text: str) -> str:
    return text.replace("%", "%%")


def _quote(value: str, *, exec_line: bool = False) -> str:
    """A value as one systemd word: in double quotes, with `%` (and in ExecStart `$`) escaped."""
    escaped = _escape_specifiers(value.replace("\\", "\\\\").replace('"', '\\"'))
    if exec_line:
        escaped = escaped.replace("$", "$$")
    return f'"{escaped}"'
