"""The correlate step: enriched events (and anomalies) become incidents.

* :mod:`.logic` — the pure step (``apply(state, event, cfg)``) and its per-service state;
* :mod:`.adapter` — the step on the shared runtime (:mod:`stream_processors.runtime`).
"""
