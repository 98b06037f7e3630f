"""Per-service template state: one :class:`TemplateMiner` per service, saved together.

Services never share templates (a ``payments`` template never absorbs an ``auth``
line), but they share one masker and its memo. Ids are derived from template text, so
the same template in two services has the same id; key results by (service, id).
"""

from __future__ import annotations

from stream_processors.normalize.templating import state
from stream_processors.normalize.templating.exceptions import InvalidState
from stream_processors.normalize.templating.masking import Masker, default_masker
from stream_processors.normalize.templating.miner import MatchResult, MinerConfig, TemplateMiner

REGISTRY_FORMAT = "seismo.templating.registry"


class TemplateRegistry:
    """Lazily creates one miner per service name. Not thread-safe; never blocks."""

    def __init__(self, config: MinerConfig | None = None, masker: Masker | None = None) -> None:
        self.config = config or MinerConfig()
        self.masker = masker or default_masker()
        self._miners: dict[str, TemplateMiner] = {}

    def miner(self, service: str) -> TemplateMiner:
        """The miner of ``service``, created empty on first use."""
        miner = self._miners.get(service)
        if miner is None:
            miner = self._miners[service] = TemplateMiner(self.config, self.masker)
        return miner

    def add(self, service: str, line: str) -> MatchResult:
        """Add ``line`` to the templates of ``service``; see :meth:`TemplateMiner.add`."""
        return self.miner(service).add(line)

    def services(self) -> tuple[str, ...]:
        """Names of the services seen so far, sorted."""
        return tuple(sorted(self._miners))

    def save_state(self) -> bytes:
        """Serialise every service's templates to bytes (deterministic JSON). Pure."""
        return state.encode(
            {
                "format": REGISTRY_FORMAT,
                "version": state.VERSION,
                "services": {name: state.snapshot(m) for name, m in self._miners.items()},
            }
        )

    def load_state(self, blob: bytes) -> None:
        """Replace all services' templates with those of :meth:`save_state` output.

        Raises :class:`InvalidState` on corrupt bytes; the registry is then unchanged.
        """
        data = state.decode(blob)
        if data.get("format") != REGISTRY_FORMAT or data.get("version") not in state.VERSIONS:
            raise InvalidState("not a Seismo template-registry snapshot of a known version")
        services = data.get("services")
        if not isinstance(services, dict):
            raise InvalidState("registry snapshot has no services")
        miners: dict[str, TemplateMiner] = {}
        for name, snap in services.items():
            miner = TemplateMiner(self.config, self.masker)
            miner.restore(snap)
            miners[str(name)] = miner
        self._miners = miners
