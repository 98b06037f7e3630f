"""The score step: enriched events become anomalies.

* :mod:`.scorer` — the pure step (``Scorer.apply(state, observation)``) and its state;
* :mod:`.observation` — the slotted view of an enriched event the scorer reads;
* :mod:`.adapter` — the step on the shared runtime (:mod:`stream_processors.runtime`).
"""
