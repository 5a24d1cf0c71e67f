"""Providers know how to start one kind of agent and how to read what it prints.

They know nothing of processes, storage or MCP.
"""
