"""Write a generated section into a Markdown file between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``.

Each bench owns one named block; text outside the markers (other benches' blocks,
hand-written prose) is kept as it is. A missing block is appended at the end.
"""

from __future__ import annotations

from pathlib import Path


def write_block(path: Path, name: str, body: str) -> None:
    """Replace (or append) block ``name`` of ``path`` with ``body``. Creates the file if needed."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    start, stop = text.find(begin), text.find(end)
    if start != -1 and stop > start:
        text = text[:start] + block + text[stop + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
