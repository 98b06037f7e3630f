"""The one stream runtime every step runs on.

* :mod:`.state` — the StateStore seam (Redis in production, memory in tests);
* :mod:`.worker` — ``seismo worker``: roles and processes.
"""
