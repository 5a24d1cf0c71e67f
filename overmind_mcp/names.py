"""Mission ids (opaque, unguessable) and names (chosen by people and models)."""

from __future__ import annotations

import re
import secrets

from overmind_mcp.errors import InvalidRequest

_ID = re.compile(r"[0-9a-f]{16}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

_ADJECTIVES = (
    "amber brave bright calm clever crisp deft eager fair fleet gentle glad keen kind lively lucid mellow "
    "nimble noble patient plucky quick quiet rapid ready sharp silent steady sturdy swift tidy true vivid "
    "warm wise zesty"
).split()
_NOUNS = (
    "badger beacon bison comet condor cougar crane falcon ferret finch fox gecko harbor heron ibis jackal "
    "kestrel koala lark lemur lynx marten merlin osprey otter panda pika quail raven robin sparrow stoat "
    "swift tern thrush vole walrus wren"
).split()


def new_id() -> str:
    """64 random bits as 16 hex digits: not a pid, not guessable, short enough to read."""
    return secrets.token_hex(8)


def looks_like_id(text: str) -> bool:
    return _ID.fullmatch(text) is not None


def new_name() -> str:
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{secrets.token_hex(2)}"


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidRequest(
            f"bad name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if looks_like_id(name):
        raise InvalidRequest(f"bad name {name!r}: 16 hex digits look like a mission id; pick a descriptive name")
    return name
