"""Who is calling: bearer tokens for HTTP clients and for missions that call back in.

A child that delegates gets its own token in its `--mcp-config`; the token *is* its
identity: its spawns become its children, and it sees only its own subtree. A child that
does not delegate gets one too, to ask for permissions, and that is all it may do with it.
Tokens live in memory and die with their mission. Only their SHA-256 is kept, so the tables hold
nothing a memory dump could replay; the store keeps that digest with a live mission (never the
token), so that a server taking over after a crash lets its re-adopted children back in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Caller:
    """A verified caller: a mission, or (mission_id None) the top-level client."""

    mission_id: str | None
    # Whether it may use the tools; a mission that does not delegate may only ask for permissions.
    tools: bool = True


ROOT = Caller(mission_id=None)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Credentials:
    def __init__(self) -> None:
        self._root: bytes | None = None
        self._missions: dict[bytes, Caller] = {}
        self._by_mission: dict[str, bytes] = {}

    def allow_root(self, token: str) -> None:
        """Accept `token` as the top-level client (HTTP clients such as IDEs)."""
        self._root = _digest(token)

    def mint(self, mission_id: str, *, tools: bool = True) -> str:
        """A new token for the mission (a restarted mission gets a fresh one; the old one dies)."""
        self.revoke(mission_id)
        token = new_token()
        digest = _digest(token)
        self._missions[digest] = Caller(mission_id, tools=tools)
        self._by_mission[mission_id] = digest
        return token

    def digest(self, mission_id: str) -> str | None:
        """The hex SHA-256 of the mission's live token, to keep with the mission (the token itself never is)."""
        digest = self._by_mission.get(mission_id)
        return digest.hex() if digest is not None else None

    def restore(self, mission_id: str, digest_hex: str, *, tools: bool) -> None:
        """Accept again the token a mission got from an earlier server (known by its digest alone)."""
        self.revoke(mission_id)
        digest = bytes.fromhex(digest_hex)
        self._missions[digest] = Caller(mission_id, tools=tools)
        self._by_mission[mission_id] = digest

    def revoke(self, mission_id: str) -> None:
        digest = self._by_mission.pop(mission_id, None)
        if digest is not None:
            self._missions.pop(digest, None)

    def active(self, mission_id: str) -> bool:
        """Whether the mission holds a live token (its token dies when it ends)."""
        return mission_id in self._by_mission

    def identify(self, token: str | None) -> Caller | None:
        """The caller a token stands for, or None if it stands for nobody."""
        if not token:
            return None
        digest = _digest(token)
        if self._root is not None and hmac.compare_digest(digest, self._root):
            return ROOT
        return self._missions.get(digest)


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
