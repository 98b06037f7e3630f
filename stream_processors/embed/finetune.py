"""``seismo embed finetune``: an adapter (:mod:`.adapter`) trained on a user's own log lines.

The lines are mined into templates (the offline miner of ``seismo templates``); up to
``per_template`` lines of each template are kept (a chatty event does not drown the rare
ones), at most ``max_lines`` in all.  A held-out share of each template's lines is set
aside; the adapter is trained on the rest and judged on the held-out lines: does each
line's nearest template (among all the file's templates) become its own more often than
with the base embedder?  :func:`finetune` returns both accuracies; the command writes the
adapter only when it is better (or when told to anyway).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stream_processors.embed.adapter import TrainConfig, retrieval_accuracy, train
from stream_processors.embed.base import Embedder

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


@dataclass(frozen=True)
class Corpus:
    """Lines and the template each was mined into; ``held_out`` marks the judging lines."""

    lines: list[str]
    templates: list[str]
    held_out: list[bool]

    @property
    def template_count(self) -> int:
        return len(set(self.templates))


@dataclass(frozen=True)
class Result:
    w: npt.NDArray[np.float32]
    corpus: Corpus
    base_accuracy: float
    adapted_accuracy: float
    final_loss: float

    @property
    def better(self) -> bool:
        return self.adapted_accuracy > self.base_accuracy


def corpus(lines: Iterable[str], fmt: str = "raw", per_template: int = 40, max_lines: int = 20_000,
           held_out: float = 0.2, seed: int = 0) -> Corpus:
    """Mine ``lines`` and sample the training corpus.  Raises UnknownLogFormat for a bad ``fmt``
    and ValueError when fewer than two templates come out (nothing to learn from)."""
    from stream_processors.normalize.templating.offline import resolve_format, templates_offline

    text = [line.rstrip("\r\n") for line in lines]
    rows = templates_offline(text, fmt)
    log_format = resolve_format(fmt)
    by: dict[str, list[str]] = {}
    for row in rows:
        raw = text[row.line_id - 1]
        content = raw if log_format is None else log_format.content(raw)
        if content:
            by.setdefault(row.event_template, []).append(content)
    if len(by) < 2:
        raise ValueError(f"{len(by)} template(s) in the input: fine-tuning needs lines of at least two "
                         "events")
    rng = random.Random(seed)
    budget = max(2, max_lines // len(by))
    out_lines, out_templates, out_held = [], [], []
    for template in sorted(by):
        unique = sorted(set(by[template]))
        rng.shuffle(unique)
        picked = unique[: min(per_template, budget)]
        cut = round(len(picked) * (1 - held_out)) if len(picked) > 1 else 1
        for i, line in enumerate(picked):
            out_lines.append(line)
            out_templates.append(template)
            out_held.append(i >= cut)
    return Corpus(out_lines, out_templates, out_held)


def embed_all(embedder: Embedder, texts: list[str], batch: int = 256,
              progress: Callable[[int], None] | None = None) -> dict[str, npt.NDArray[np.float32]]:
    """Each distinct text's vector, computed once, ``progress(n)`` after each batch of ``n``."""
    unique = sorted(set(texts))
    out: dict[str, npt.NDArray[np.float32]] = {}
    for i in range(0, len(unique), batch):
        chunk = unique[i:i + batch]
        for text, vector in zip(chunk, embedder.embed(chunk), strict=True):
            out[text] = vector
        if progress is not None:
            progress(len(chunk))
    return out


def finetune(data: Corpus, vectors: dict[str, npt.NDArray[np.float32]], config: TrainConfig | None = None,
             progress: Callable[[int, float], None] | None = None) -> Result:
    """Train on the corpus' training lines; judge base and adapted on its held-out lines."""
    import numpy as np

    train_rows = [i for i, held in enumerate(data.held_out) if not held]
    test_rows = [i for i, held in enumerate(data.held_out) if held]
    anchors = np.stack([vectors[data.lines[i]] for i in train_rows])
    positives = np.stack([vectors[data.templates[i]] for i in train_rows])
    losses: list[float] = []

    def heard(step: int, loss: float) -> None:
        losses.append(loss)
        if progress is not None:
            progress(step, loss)

    w = train(anchors, positives, [data.templates[i] for i in train_rows], config, heard)
    names = sorted(set(data.templates))
    candidates = np.stack([vectors[n] for n in names])
    if test_rows:
        queries = np.stack([vectors[data.lines[i]] for i in test_rows])
        labels = [data.templates[i] for i in test_rows]
        base = retrieval_accuracy(queries, labels, candidates, names)
        adapted = retrieval_accuracy(queries, labels, candidates, names, w)
    else:
        base = adapted = 0.0
    return Result(w, data, base, adapted, float(np.mean(losses[-20:])) if losses else 0.0)


def held_out_accuracy(embedder: Embedder, data: Corpus,
                      progress: Callable[[int], None] | None = None) -> float:
    """Share of the corpus' held-out lines whose nearest template (cosine, among all its templates,
    by ``embedder``) is their own; 0.0 when none is held out."""
    import numpy as np

    rows = [i for i, held in enumerate(data.held_out) if held]
    if not rows:
        return 0.0

    names = sorted(set(data.templates))
    vectors = embed_all(embedder, [data.lines[i] for i in rows] + names, progress=progress)
    queries = np.stack([vectors[data.lines[i]] for i in rows])
    candidates = np.stack([vectors[n] for n in names])
    return retrieval_accuracy(queries, [data.templates[i] for i in rows], candidates, names)
