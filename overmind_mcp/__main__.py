from overmind_mcp.cli import main

main()
