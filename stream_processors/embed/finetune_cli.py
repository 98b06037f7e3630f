"""``seismo embed finetune --from FILE``: adapt the template embedder to your own logs (opt-in).

Mines FILE's templates, trains a linear head on top of all-MiniLM-L6-v2 (numpy, CPU, no
torch; :mod:`.adapter`), and judges it on held-out lines of FILE: how often a line's nearest
template is its own, with the base embedder and with the adapted one.  The adapter file is
written only when it is better (``--force`` writes it anyway); point
``SEISMO_EMBED_ADAPTER`` at it to use it in the worker and the gateway.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

embed_app = typer.Typer(help="The template embedder: adapt it to your own logs (opt-in).",
                        no_args_is_help=True)


def _default_out() -> Path:
    from seismo.cliutil import settings

    return settings().state_dir / "embed" / "adapter.npz"


@embed_app.command("finetune")
def finetune_command(
    source: Annotated[Path, typer.Option(
        "--from", exists=True, dir_okay=False, readable=True,
        help="A log file (one line per event) from the systems whose logs Seismo will read.")],
    out: Annotated[Path | None, typer.Option(
        help="Where to write the adapter (default: SEISMO_STATE_DIR/embed/adapter.npz).")] = None,
    fmt: Annotated[str, typer.Option(
        "--format",
        help="raw (the whole line is the message) or loghub:SYSTEM (cut the content out).")] = "raw",
    steps: Annotated[int, typer.Option(min=1, max=100_000, help="Training steps.")] = 300,
    per_template: Annotated[int, typer.Option(min=2, help="Most distinct lines kept per template.")] = 40,
    max_lines: Annotated[int, typer.Option(min=10, help="Most lines embedded in all.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed of the sampling and of the training.")] = 0,
    force: Annotated[bool, typer.Option(help="Write the adapter even when it is not better.")] = False,
) -> None:
    """Train an embedding adapter on FILE and write it if it retrieves templates better."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from seismo.cliutil import console, fail, print_warning
    from stream_processors.embed.adapter import TrainConfig, save_adapter
    from stream_processors.embed.exceptions import EmbedError
    from stream_processors.embed.finetune import corpus, embed_all, finetune
    from stream_processors.embed.minilm import MiniLMEmbedder
    from stream_processors.normalize.templating.exceptions import UnknownLogFormat

    target = out or _default_out()
    try:
        with source.open(encoding="utf-8", errors="replace") as fh:
            data = corpus(fh, fmt, per_template=per_template, max_lines=max_lines, seed=seed)
    except UnknownLogFormat as exc:
        raise fail(str(exc.args[0]) if exc.args else str(exc), 2) from None
    except ValueError as exc:
        raise fail(f"{source}: {exc}") from None
    console.print(f"{source}: {len(data.lines)} distinct lines of {data.template_count} templates "
                  f"({sum(data.held_out)} held out to judge the result)", highlight=False)
    try:
        embedder = MiniLMEmbedder()
    except EmbedError as exc:
        raise fail(str(exc)) from None
    texts = data.lines + sorted(set(data.templates))
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("embedding", total=len(set(texts)))
        vectors = embed_all(embedder, texts, progress=lambda n: bar.advance(task, n))
        task = bar.add_task("training", total=steps)
        result = finetune(data, vectors, TrainConfig(steps=steps, seed=seed),
                          progress=lambda step, loss: bar.update(task, completed=step))
    console.print(f"nearest-template accuracy on the held-out lines: base {result.base_accuracy:.3f}, "
                  f"adapted {result.adapted_accuracy:.3f} (final training loss {result.final_loss:.3f})",
                  highlight=False)
    if not result.better and not force:
        print_warning("the adapter is not better on the held-out lines; nothing written (--force writes it)")
        raise typer.Exit(1)
    save_adapter(target, result.w, {
        "base": embedder.model_version, "source": source.name, "lines": len(data.lines),
        "templates": data.template_count, "steps": steps, "seed": seed,
        "base_accuracy": result.base_accuracy, "adapted_accuracy": result.adapted_accuracy,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    })
    console.print(f"wrote {target}; use it with SEISMO_EMBED_ADAPTER={target}", highlight=False)
