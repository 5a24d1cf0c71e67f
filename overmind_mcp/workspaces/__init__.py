"""Workspaces: the directory each mission works in."""
