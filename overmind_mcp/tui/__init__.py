"""`overmind tui`: a full-screen view of every mission on the state directory, and keys to act on them.

Needs Textual (the `tui` extra: `pip install 'overmind-mcp[tui]'`); nothing else imports this package.
"""
