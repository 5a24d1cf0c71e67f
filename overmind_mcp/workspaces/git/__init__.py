"""Git worktree isolation: each mission on a branch and a directory of its own, merged back without losing work."""

from overmind_mcp.workspaces.git.workspace import GitWorktreeWorkspace

__all__ = ["GitWorktreeWorkspace"]
