"""The normalize step: redact secrets, mask variable parts, mine templates, score novelty.

* :mod:`.normalizer` — the pure step (``Normalizer.process(event)``), built on
  :mod:`.redaction` (secret detectors), :mod:`.screen` (a fast pre-filter in front of
  them) and :mod:`.templating` (placeholders and the online template miner);
* :mod:`.durable` — the miners behind a StateStore (saved before a new template is sent);
* :mod:`.novelty` — template novelty from embeddings (:mod:`stream_processors.embed`);
* :mod:`.mask_config` — extra placeholder rules from a file;
* :mod:`.adapter` — the step on the shared runtime (:mod:`stream_processors.runtime`).
"""
