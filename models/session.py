"""Session (log block) anomaly detection by online invariant mining over event counts.

A session is a ``dict[str, float]`` of event-template counts (``{"E5": 3, ...}``).
Normal executions obey linear invariants such as ``count(E5) == count(E26)``
(every received block is stored); anomalies break one, or contain an event that
almost never happens.  This is Invariants Mining (Lou et al., USENIX ATC 2010)
restricted to pairwise ratio invariants, learned online and without labels:
every candidate ``a * c_i == b * c_j`` keeps a count of the sessions where it
held, and is *active* once it held in at least ``support`` of them.
"""

from __future__ import annotations

from models.base import Features
from models.state import DataState, Document, StateError, integer, text_keys

RATIOS: tuple[tuple[int, int], ...] = ((1, 1), (1, 2), (2, 1), (1, 3), (3, 1))


class SessionInvariants(DataState):
    """Online pairwise invariants plus rare-event detection over event counts.

    ``score_one`` = number of active invariants ``x`` violates + number of rare
    events (document frequency below ``rare_fraction``) it contains; 0.0 means
    consistent with everything learned.  Nothing is active before
    ``min_samples`` sessions.  Invariants between two events that never co-occur
    (both counts zero) are trivially satisfied and ignored; an invariant is only
    mined between events seen in at least ``rare_fraction`` of sessions.
    """

    def __init__(
        self,
        support: float = 0.98,
        rare_fraction: float = 0.01,
        min_samples: int = 100,
        seed: int = 0,
    ) -> None:
        self.support = support
        self.rare_fraction = rare_fraction
        self.min_samples = min_samples
        self.seed = seed
        self._n = 0
        self._df: dict[str, int] = {}
        self._holds: dict[tuple[str, str, int, int], int] = {}
        self._active: list[tuple[str, str, int, int]] = []

    STATE_FORMAT = "seismo.session_invariants"

    def _dump_state(self) -> Document:
        return {
            "n": self._n,
            "df": dict(self._df),
            "holds": [[*cand, held] for cand, held in self._holds.items()],
            "active": [list(cand) for cand in self._active],
        }

    def _load_state(self, state: Document) -> None:
        def candidate(row: list[object]) -> tuple[str, str, int, int]:
            i, j, a, b = row
            if not isinstance(i, str) or not isinstance(j, str):
                raise StateError("an invariant names two events")
            return i, j, integer(a), integer(b)

        n = integer(state["n"])
        df = {k: integer(v) for k, v in text_keys(state["df"]).items()}
        holds = {candidate(row[:4]): integer(row[4]) for row in state["holds"]}
        active = [candidate(row) for row in state["active"]]
        self._n, self._df, self._holds, self._active = n, df, holds, active

    def _present(self, x: Features) -> dict[str, float]:
        return {k: v for k, v in x.items() if v > 0}

    def _frequent(self) -> list[str]:
        floor = self.rare_fraction * self._n
        return sorted(k for k, df in self._df.items() if df >= floor)

    def learn_one(self, x: Features) -> None:
        present = self._present(x)
        for key in present:
            if key not in self._df:
                self._add_candidates(key)  # against the counts of earlier sessions only
                self._df[key] = 0
        for key in present:
            self._df[key] += 1
        self._n += 1
        for cand in self._holds:
            i, j, a, b = cand
            if a * present.get(i, 0.0) == b * present.get(j, 0.0):
                self._holds[cand] += 1
        self._refresh()

    def _add_candidates(self, key: str) -> None:
        # Earlier sessions lacked ``key``: a*0 == b*c_j held exactly where c_j was 0.
        for other, df in self._df.items():
            if other == key:
                continue
            first, second = sorted((key, other))
            for a, b in RATIOS:
                self._holds[(first, second, a, b)] = self._n - df

    def _refresh(self) -> None:
        if self._n < self.min_samples:
            self._active = []
            return
        frequent = set(self._frequent())
        need = self.support * self._n
        self._active = [
            cand
            for cand, held in self._holds.items()
            if held >= need and cand[0] in frequent and cand[1] in frequent
        ]

    def violations(self, x: Features) -> list[str]:
        """Human-readable reasons ``x`` is anomalous (empty when it is not)."""
        if self._n < self.min_samples:
            return []
        present = self._present(x)
        out = [
            f"{a}*{i} != {b}*{j}"
            for i, j, a, b in self._active
            if a * present.get(i, 0.0) != b * present.get(j, 0.0)
        ]
        floor = self.rare_fraction * self._n
        out += [f"rare event {k}" for k in present if self._df.get(k, 0) < floor]
        return out

    def score_one(self, x: Features) -> float:
        return float(len(self.violations(x)))
