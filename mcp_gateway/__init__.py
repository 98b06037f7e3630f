"""mcp_gateway."""
