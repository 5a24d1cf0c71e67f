"""Children on this machine: process groups, files, pidfds and inotify."""

from overmind_mcp.runners.local.runner import LocalRunner

__all__ = ["LocalRunner"]
