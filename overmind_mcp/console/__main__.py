from overmind_mcp.console import main

main()
