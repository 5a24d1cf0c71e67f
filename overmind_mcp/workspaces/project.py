"""A project's ports and services, from `.overmind.toml` at its repository root (or an existing `.overmind.yml`).

```toml
[isolation]
port_range = "3100-3999"          # both ends may be leased

[services.web]                    # a program started per mission, in its worktree
command = ["python3", "-m", "http.server", "{port}"]
ready_timeout_s = 30

[services.db]                     # a container per mission, through the docker CLI
docker = "postgres:16"
port = 5432                       # the container's port; the mission's own port is mapped to it
env = { POSTGRES_PASSWORD = "dev" }

[services.app]                    # no command and no image: only a port, for the mission's own server
```

Every service gets a port of its own per mission (the lowest free one of the range), given
to the mission as `<NAME>_PORT`, and as `PORT` too when there is one service. A `command`
is an argv list (never a shell line); `{port}` in it becomes the service's port, which it
also finds as `PORT` in its environment. `.overmind.yml` has the same shape (the original
Overmind's file): it is read with a real YAML parser, and a `command` written there as one
string is split into words as a shell would split them, but never run through a shell.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from overmind_mcp.errors import InvalidRequest

TOML_NAME = ".overmind.toml"
YAML_NAME = ".overmind.yml"
DEFAULT_PORT_RANGE = (3100, 3999)

_SERVICE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")
# Words that mean something only to a shell: a command using them needs one, and says so itself.
_SHELL_WORDS = frozenset({"|", "||", "&", "&&", ";", ">", ">>", "<", "<<", "2>", "2>&1", "$(", "`"})


class Service(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    command: list[str] | None = None
    docker: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    env: dict[str, str] = {}
    ready_timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("command", mode="before")
    @classmethod
    def _argv(cls, value: Any) -> Any:
        if isinstance(value, str):
            words = shlex.split(value)
            shell = sorted(set(words) & _SHELL_WORDS)
            if shell:
                raise ValueError(
                    f"uses shell syntax ({' '.join(shell)}): write it as an argv list, "
                    'or run the shell yourself: ["sh", "-c", "…"]'
                )
            return words
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Service:
        if self.command is not None and self.docker is not None:
            raise ValueError("give `command` or `docker`, not both")
        if self.command is not None and not (self.command and self.command[0]):
            raise ValueError("`command` is an empty argv list")
        if self.docker is not None and self.port is None:
            raise ValueError("a `docker` service needs `port`: the container's port to map the mission's port to")
        return self

    @property
    def kind(self) -> Literal["command", "docker", "port"]:
        if self.command is not None:
            return "command"
        return "docker" if self.docker is not None else "port"


class Isolation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    port_range: tuple[int, int] = DEFAULT_PORT_RANGE
    strategy: Literal["ports"] = "ports"  # the original's only strategy; kept so its files read as they are

    @field_validator("port_range", mode="before")
    @classmethod
    def _range(cls, value: Any) -> Any:
        if isinstance(value, str):
            low, dash, high = value.partition("-")
            if not dash or not low.strip().isdigit() or not high.strip().isdigit():
                raise ValueError(f'{value!r} is not a range like "3100-3999"')
            return (int(low), int(high))
        return value

    @field_validator("port_range")
    @classmethod
    def _ordered(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if not 1 <= low <= high <= 65535:
            raise ValueError(f"{low}-{high} must be a range within 1-65535, lowest first")
        return value


class ProjectFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path
    isolation: Isolation = Isolation()
    services: dict[str, Service] = {}

    @field_validator("services")
    @classmethod
    def _names(cls, value: dict[str, Service]) -> dict[str, Service]:
        for name in value:
            if not _SERVICE_NAME.fullmatch(name):
                raise ValueError(f"service name {name!r}: use letters, digits, - and _, starting with a letter")
        variables = [port_variable(name) for name in value]
        if len(set(variables)) != len(variables):
            raise ValueError("two services give the same variable (names differ only in case or - and _)")
        return value

    def port_variables(self, ports: dict[str, int]) -> dict[str, str]:
        """What a mission's environment carries for its leased ports."""
        env = {port_variable(name): str(port) for name, port in ports.items()}
        if len(ports) == 1:
            env["PORT"] = str(next(iter(ports.values())))
        return env


def port_variable(service: str) -> str:
    return f"{service.upper().replace('-', '_')}_PORT"


def load(root: Path) -> ProjectFile | None:
    """The project file at `root`, or None when there is none; raises InvalidRequest saying what to fix."""
    toml_path, yaml_path = root / TOML_NAME, root / YAML_NAME
    if toml_path.exists() and yaml_path.exists():
        raise InvalidRequest(f"{root} has both {TOML_NAME} and {YAML_NAME}: keep one of them")
    if toml_path.exists():
        path = toml_path
        try:
            data: Any = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"{path}: not valid TOML ({exc})") from None
    elif yaml_path.exists():
        import yaml  # on first use: most projects have no YAML file, and loading it slows every start

        path = yaml_path
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"{path}: not valid YAML ({exc})") from None
    else:
        return None
    if not isinstance(data, dict):
        raise InvalidRequest(f"{path}: expected a table of settings at the top")
    try:
        return ProjectFile.model_validate({**data, "path": path})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        )
        raise InvalidRequest(f"{path}: {problems}") from None
