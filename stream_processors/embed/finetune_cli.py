"""``seismo embed finetune --from FILE``: adapt the template embedder to your own logs (opt-in).

Mines FILE's templates and trains on pairs of (line, its template), then judges the result on
held-out lines of FILE: how often a line's nearest template is its own, with the base embedder
and with the adapted one.  Two methods:

* ``--method head`` (default): a linear head on top of all-MiniLM-L6-v2 (numpy, CPU, seconds, no
  torch; :mod:`.adapter`), written as an ``.npz`` file;
* ``--method full``: fine-tunes the transformer's top layers (torch on CPU, minutes; the
  ``deep`` extra; :mod:`.finetune_full`), written as a model folder that the numpy engine serves.

The result is kept only when it is better (``--force`` keeps it anyway); point
``SEISMO_EMBED_ADAPTER`` at the file or folder to use it in the worker and the gateway.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stream_processors.embed.model import MARKER

if TYPE_CHECKING:
    from stream_processors.embed.finetune import Corpus
    from stream_processors.embed.minilm import MiniLMEmbedder

METHODS = ("head", "full")

embed_app = typer.Typer(help="The template embedder: adapt it to your own logs (opt-in).",
                        no_args_is_help=True)


def _default_out(method: str) -> Path:
    from seismo.cliutil import settings

    return settings().state_dir / "embed" / ("adapter.npz" if method == "head" else "model")


@embed_app.command("finetune")
def finetune_command(
    source: Annotated[Path, typer.Option(
        "--from", exists=True, dir_okay=False, readable=True,
        help="A log file (one line per event) from the systems whose logs Seismo will read.")],
    out: Annotated[Path | None, typer.Option(
        help="Where to write the result (default: SEISMO_STATE_DIR/embed/adapter.npz for head, "
             "SEISMO_STATE_DIR/embed/model/ for full).")] = None,
    method: Annotated[str, typer.Option(
        help="head: a linear head in numpy (seconds); full: fine-tune the transformer's top layers "
             "(torch on CPU, minutes; needs the 'deep' extra).")] = "head",
    layers: Annotated[int, typer.Option(
        min=1, max=6, help="Top transformer layers trained (--method full).")] = 2,
    fmt: Annotated[str, typer.Option(
        "--format",
        help="raw (the whole line is the message) or loghub:SYSTEM (cut the content out).")] = "raw",
    steps: Annotated[int | None, typer.Option(
        min=1, max=100_000, help="Training steps (default: 300 for head, 150 for full).")] = None,
    per_template: Annotated[int, typer.Option(min=2, help="Most distinct lines kept per template.")] = 40,
    max_lines: Annotated[int, typer.Option(min=10, help="Most lines embedded in all.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed of the sampling and of the training.")] = 0,
    force: Annotated[bool, typer.Option(help="Write the result even when it is not better.")] = False,
) -> None:
    """Adapt the embedder to FILE's lines and keep the result if it retrieves templates better."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from seismo.cliutil import console, fail, print_warning
    from stream_processors.embed.adapter import TrainConfig, save_adapter
    from stream_processors.embed.exceptions import EmbedError
    from stream_processors.embed.finetune import corpus, embed_all, finetune
    from stream_processors.embed.minilm import MiniLMEmbedder
    from stream_processors.normalize.templating.exceptions import UnknownLogFormat

    if method not in METHODS:
        raise fail(f"--method {method!r}: use one of {', '.join(METHODS)}", 2)
    target = out or _default_out(method)
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
    if method == "full":
        _full(data, source, target, embedder, layers, steps or 150, seed, force)
        return
    steps = steps or 300
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


def _full(data: Corpus, source: Path, target: Path, base_engine: MiniLMEmbedder, layers: int, steps: int,
          seed: int, force: bool) -> None:
    """``--method full``: train into a staging folder beside ``target``, judge what the numpy engine
    serves from it, and move it to ``target`` only when it is better (or forced)."""
    import shutil

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from seismo.cliutil import console, fail, print_warning
    from stream_processors.embed.adapter import AdapterError
    from stream_processors.embed.finetune import held_out_accuracy
    from stream_processors.embed.finetune_full import FullConfig, train_full
    from stream_processors.embed.minilm import MiniLMEmbedder

    if target.exists() and not target.is_dir():
        raise fail(f"{target} is a file; --method full writes a model folder (choose another --out)", 2)
    staging = target.with_name(target.name + ".candidate")
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    held = sum(data.held_out) + data.template_count
    try:
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("judging the base model", total=held)
            base = held_out_accuracy(base_engine, data, progress=lambda n: bar.advance(task, n))
            task = bar.add_task("fine-tuning", total=steps)
            result = train_full(data, staging, FullConfig(steps=steps, layers=layers, seed=seed),
                                progress=lambda step, loss: bar.update(task, completed=step))
            task = bar.add_task("judging the fine-tuned model", total=held)
            tuned = held_out_accuracy(MiniLMEmbedder(staging), data, progress=lambda n: bar.advance(task, n))
    except AdapterError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise fail(str(exc)) from None
    console.print(f"nearest-template accuracy on the held-out lines: base {base:.3f}, fine-tuned {tuned:.3f} "
                  f"(final training loss {result.final_loss:.3f})", highlight=False)
    if tuned <= base and not force:
        shutil.rmtree(staging, ignore_errors=True)
        print_warning("the fine-tuned model is not better on the held-out lines; nothing written "
                      "(--force writes it)")
        raise typer.Exit(1)
    marker = staging / MARKER
    meta = json.loads(marker.read_text(encoding="utf-8"))
    meta.update({"source": source.name, "lines": len(data.lines), "templates": data.template_count,
                 "base_accuracy": base, "adapted_accuracy": tuned,
                 "created": datetime.now(UTC).isoformat(timespec="seconds")})
    marker.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    console.print(f"wrote {target}/ ({result.version}); use it with SEISMO_EMBED_ADAPTER={target}",
                  highlight=False)
