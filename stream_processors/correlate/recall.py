"""What the correlator remembers of templates: when each service's templates were seen.

Pure.  ``templates`` maps ``"service\\x00template"`` to ``[first, last]`` event times; a template
unseen for :data:`TEMPLATE_MEMORY_US` starts over.  A symptom whose template was seen well
before its incident began is *familiar* (background that happens to coincide), one seen
first in the incident is *new* — the root-cause ranking weighs them differently.
"""

from __future__ import annotations

from stream_processors.correlate.signals import Signal

TEMPLATE_MEMORY_US = 24 * 3600 * 1_000_000


def coherence_key(sig: Signal) -> str:
    """What makes two symptoms "the same message": the template, else the first word (error class)."""
    return sig.template_id or (sig.summary.split(maxsplit=1) or [""])[0].rstrip(":")


def saw_template(templates: dict[str, list[int]], sig: Signal) -> None:
    key = f"{sig.service}\x00{sig.template_id}"
    seen = templates.get(key)
    if seen is None or sig.ts_us - seen[1] > TEMPLATE_MEMORY_US:
        templates[key] = [sig.ts_us, sig.ts_us]
    else:
        seen[0], seen[1] = min(seen[0], sig.ts_us), max(seen[1], sig.ts_us)


def familiar(templates: dict[str, list[int]], sig: Signal, before_us: int) -> bool | None:
    """Whether the signal's template was seen before ``before_us`` (None: it has no template)."""
    if not sig.template_id:
        return None
    seen = templates.get(f"{sig.service}\x00{sig.template_id}")
    return seen is not None and seen[0] < before_us
