"""Smaller published tool schemas: the tool list is read by every session and counts against
the assistant's context (the whole list stays under 8,000 tokens; a test measures it).

Input schemas keep everything validation and the model need, minus titles and null defaults;
``anyOf [X, null]`` becomes ``type: [X, "null"]``.  Output schemas keep the top-level fields
with their types and descriptions; nested models are described as ``object`` (the answer
speaks for itself).  Validation still uses the Pydantic models, not these schemas.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer


def compact(node: Any, output: bool, depth: int = 0) -> Any:
    if isinstance(node, list):
        return [compact(n, output, depth) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" or (key == "default" and (value is None or output)):
            continue
        if output and key in ("required", "$defs", "additionalProperties"):
            continue
        if output and key == "$ref":
            out["type"] = "object"
            continue
        if key == "properties" and isinstance(value, dict):
            if output and depth > 0:
                continue
            out[key] = {name: compact(v, output, depth + 1) for name, v in value.items()}
        elif key == "$defs" and isinstance(value, dict):
            out[key] = {name: compact(v, output, depth) for name, v in value.items()}
        else:
            out[key] = compact(value, output, depth)
    if output and isinstance(out.get("items"), dict):
        out["items"] = {"type": out["items"].get("type", "object")}
    if output and depth > 0:
        out.pop("description", None) if "type" in out and out.get("type") == "object" else None
    branches = out.get("anyOf")
    if isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches:
        other = next(b for b in branches if b != {"type": "null"})
        if set(other) == {"type"} and isinstance(other["type"], str):
            del out["anyOf"]
            out["type"] = [other["type"], "null"]
    return out


def compact_tools(server: MCPServer, names: set[str]) -> None:
    """Replace the published schemas of ``names`` by compact ones (the SDK reads them live)."""
    for name in names:
        tool = server._tool_manager.get_tool(name)
        if tool is None:
            continue
        tool.parameters = compact(tool.parameters, output=False)
        if tool.fn_metadata.output_schema is not None:
            tool.fn_metadata.output_schema = compact(tool.fn_metadata.output_schema, output=True)
