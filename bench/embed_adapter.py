"""Does ``seismo embed finetune``'s adapter help?  Nearest-template retrieval on Loghub-2k systems.

The task is what ``search_events`` does when an assistant pastes a log line: embed the raw
line and rank template texts by cosine.  Per system, every raw line (the content cut out
with the system's Loghub format) is a query; the candidates are the system's templates;
a hit is a line whose nearest template is its own.  Two candidate sets:

* **mined** -- the templates Seismo's own miner gives the system's lines (what the gateway
  really ranks; labels from the miner);
* **Loghub** -- the system's ground-truth templates (labels from Loghub).

Each printed beside the base embedder (all-MiniLM-L6-v2, numpy), for two adapters trained
by the production code (:mod:`stream_processors.embed.adapter`, default
:class:`TrainConfig`) on (line, mined template) pairs -- never on Loghub labels:

* **LOSO** -- trained on the other systems' lines: an adapter the held-out system never
  contributed to (the number a new user's logs get from a general adapter);
* **own half** -- trained on the first half of the system's own lines, judged on the
  second half (what ``seismo embed finetune --from FILE`` does with a user's own file).

With ``--full`` (needs torch, the ``deep`` extra), the own-half column is also measured for
``--method full`` (:mod:`stream_processors.embed.finetune_full`, default :class:`FullConfig`):
the transformer's top layers fine-tuned on the same first-half pairs, the second half embedded
by the numpy engine from the written model folder.

Usage: python bench/embed_adapter.py --data ../shared/data/loghub2k [--cache FILE.npz] [--full]
       [--write-docs docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from docblock import write_block
from templates import load_system

from stream_processors.embed.adapter import TrainConfig, retrieval_accuracy, train
from stream_processors.embed.finetune import Corpus, embed_all, held_out_accuracy
from stream_processors.embed.minilm import MiniLMEmbedder
from stream_processors.normalize.templating.offline import templates_offline


class Vectors:
    """Embeddings by text, computed once (and kept in ``cache`` when given, keyed by model version)."""

    def __init__(self, cache: Path | None) -> None:
        self.engine = MiniLMEmbedder()
        self.engine.load()  # before any timing
        self.cache = cache
        self.known: dict[str, np.ndarray] = {}
        if cache is not None and cache.exists():
            with np.load(cache, allow_pickle=False) as npz:
                if str(npz["version"]) == self.engine.model_version:
                    self.known = {k: npz[k] for k in npz.files if k != "version"}

    @staticmethod
    def key(text: str) -> str:
        return "t" + hashlib.sha1(text.encode()).hexdigest()

    def fill(self, texts: Sequence[str]) -> None:
        missing = sorted({t for t in texts if self.key(t) not in self.known})
        started, done = time.monotonic(), [0]

        def progress(n: int) -> None:
            done[0] += n
            print(f"\r  embedded {done[0]}/{len(missing)} new texts in {time.monotonic() - started:.0f} s",
                  end="", file=sys.stderr, flush=True)

        for text, vector in embed_all(self.engine, missing, progress=progress).items():
            self.known[self.key(text)] = vector
        if missing:
            print(file=sys.stderr)
        if missing and self.cache is not None:
            np.savez(self.cache, version=np.array(self.engine.model_version), **self.known)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.known[self.key(t)] for t in texts])


def accuracy(vec: Vectors, lines: list[str], labels: list[str], w: np.ndarray | None) -> float:
    names = sorted(set(labels))
    return retrieval_accuracy(vec(lines), labels, vec(names), names, w)


def full_own_half(lines: list[str], mined: list[str], truth: list[str], scratch: Path) -> tuple[float, float]:
    """``--method full`` trained on the first half; (mined, Loghub) accuracy on the second half."""
    from stream_processors.embed.finetune_full import train_full

    half = len(lines) // 2
    data = Corpus(lines[:half], mined[:half], [False] * half)
    started = time.monotonic()
    result = train_full(data, scratch / "model", progress=lambda step, loss: print(
        f"\r  fine-tuning step {step} (loss {loss:.3f}) {time.monotonic() - started:.0f} s", end="",
        file=sys.stderr, flush=True))
    print(file=sys.stderr)
    engine, second = MiniLMEmbedder(result.folder), lines[half:]
    judged = [Corpus(second, labels, [True] * len(second)) for labels in (mined[half:], truth[half:])]
    return held_out_accuracy(engine, judged[0]), held_out_accuracy(engine, judged[1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="folder holding one sub-folder per system")
    parser.add_argument("--cache", type=Path, help="an .npz file keeping the embeddings between runs")
    parser.add_argument("--write-docs", type=Path, help="write the table into this Markdown file's block")
    parser.add_argument("--full", action="store_true",
                        help="also fine-tune the transformer (--method full; needs torch) on each own half")
    args = parser.parse_args(argv)
    folders = sorted(p for p in args.data.iterdir() if p.is_dir())
    if len(folders) < 2:
        parser.error(f"{args.data}: need at least two system folders")
    systems: dict[str, tuple[list[str], list[str], list[str]]] = {}
    for folder in folders:
        lines, truth = load_system(folder)
        mined = [row.event_template for row in templates_offline(lines)]
        if len(mined) != len(lines):
            raise SystemExit(f"{folder.name}: {len(lines)} lines but {len(mined)} mined (blank lines?)")
        systems[folder.name] = (lines, mined, truth)
    vec = Vectors(args.cache)
    print(f"embedding the lines and templates of {len(systems)} systems", file=sys.stderr)
    vec.fill([t for s in systems.values() for part in s for t in part])
    head = ("| system | mined: base | LOSO | own half: base | own half | Loghub: base | LOSO "
            "| own half: base | own half |")
    head += " mined: own half, full | Loghub: own half, full |" if args.full else ""
    rows, out = [], [head, "|" + "---|" * (11 if args.full else 9)]
    scratch = Path(tempfile.mkdtemp(prefix="seismo-bench-ft-"))
    for name, (lines, mined, truth) in systems.items():
        others = [s for s in systems if s != name]
        anchors = np.concatenate([vec(systems[s][0]) for s in others])
        positives = np.concatenate([vec(systems[s][1]) for s in others])
        groups = [f"{s}|{t}" for s in others for t in systems[s][1]]
        loso = train(anchors, positives, groups, TrainConfig())
        half = len(lines) // 2
        own = train(vec(lines[:half]), vec(mined[:half]), mined[:half], TrainConfig())
        second = lines[half:]
        row = (
            accuracy(vec, lines, mined, None), accuracy(vec, lines, mined, loso),
            accuracy(vec, second, mined[half:], None), accuracy(vec, second, mined[half:], own),
            accuracy(vec, lines, truth, None), accuracy(vec, lines, truth, loso),
            accuracy(vec, second, truth[half:], None), accuracy(vec, second, truth[half:], own),
        ) + (full_own_half(lines, mined, truth, scratch) if args.full else ())
        rows.append(row)
        out.append(f"| {name} | " + " | ".join(f"{x:.3f}" for x in row) + " |")
        print(out[-1], file=sys.stderr)
    means = np.mean(np.array(rows), axis=0)
    out.append("| **mean** | " + " | ".join(f"**{x:.3f}**" for x in means) + " |")
    table = "\n".join(out)
    summary = (
        f"mined templates: base {means[0]:.3f} -> LOSO adapter {means[1]:.3f} (held-out systems); "
        f"own half: base {means[2]:.3f} -> adapter {means[3]:.3f}\n"
        f"Loghub templates: base {means[4]:.3f} -> LOSO adapter {means[5]:.3f} (held-out systems); "
        f"own half: base {means[6]:.3f} -> adapter {means[7]:.3f}"
    ) + (f"\nown half, --method full: mined {means[8]:.3f}, Loghub {means[9]:.3f}" if args.full else "")
    print(table)
    print("\n" + summary)
    if args.write_docs:
        body = (
            "## Embedding adapter: nearest-template retrieval of raw lines (Loghub-2k, shared systems)\n\n"
            "Generated by `python bench/embed_adapter.py --data ../shared/data/loghub2k"
            + (" --full" if args.full else "") + " --write-docs docs/benchmarks.md`. "
            "Accuracy of a raw line's nearest template (cosine) being its own; "
            "*LOSO*: adapter trained on the other systems; *own half*: trained on the first half of the "
            "system's lines, judged on the second half. Training pairs are (line, mined template); "
            "Loghub labels are only used to judge. *full* (with `--full`): `--method full`, the "
            "transformer's top two layers fine-tuned on the same own-half pairs (torch, CPU), served "
            "by the numpy engine.\n\n" + table + "\n\n" + summary + "\n"
        )
        write_block(args.write_docs, "embed_adapter", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
