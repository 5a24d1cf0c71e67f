"""The web dashboard: every mission on the state directory at a glance, live, with its actions.

Served by every server at `/`, beside the MCP endpoint at `/mcp` (see `web.Dashboard`);
`overmind dashboard` prints a one-time login URL (see `access`). Kept import-light: the
console imports `access` alone, and only `web` brings in Starlette and Jinja2.
"""
