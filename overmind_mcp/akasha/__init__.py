"""Akasha: the memory that an orchestrator and its children share.

Memories live in `akasha.db` beside the mission database, are searched with SQLite
FTS5 and ranked by BM25, and carry where they belong (a namespace) and who wrote them.
"""

from overmind_mcp.akasha.models import ForgetResult, Memory, RecallHit, RecallResult, Remembered
from overmind_mcp.akasha.namespaces import Provenance, Scope
from overmind_mcp.akasha.query import CompiledQuery, compile_query
from overmind_mcp.akasha.store import FILENAME, Akasha, NewMemory

__all__ = [
    "FILENAME",
    "Akasha",
    "CompiledQuery",
    "ForgetResult",
    "Memory",
    "NewMemory",
    "Provenance",
    "RecallHit",
    "RecallResult",
    "Remembered",
    "Scope",
    "compile_query",
]
