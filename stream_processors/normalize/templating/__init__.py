"""Log templating: semantic masking, online template mining, Loghub formats.

Pure logic, no Kafka: an adapter feeds lines to :class:`TemplateRegistry` (one miner
per service) and publishes the :class:`MatchResult` it gets back.
"""

from stream_processors.normalize.templating.exceptions import (
    InvalidMaskRule,
    InvalidState,
    TemplatingError,
    UnknownLogFormat,
)
from stream_processors.normalize.templating.loghub import LOGHUB_FORMATS, LogFormat, loghub_format
from stream_processors.normalize.templating.masking import MaskedLine, Masker, Param, mask, with_rules
from stream_processors.normalize.templating.miner import Change, MatchResult, MinerConfig, TemplateMiner
from stream_processors.normalize.templating.offline import TemplateRow, templates_offline
from stream_processors.normalize.templating.registry import TemplateRegistry
from stream_processors.normalize.templating.rules import DEFAULT_RULES, MaskRule, rule

__all__ = [
    "DEFAULT_RULES",
    "LOGHUB_FORMATS",
    "Change",
    "InvalidMaskRule",
    "InvalidState",
    "LogFormat",
    "MaskRule",
    "MaskedLine",
    "Masker",
    "MatchResult",
    "MinerConfig",
    "Param",
    "TemplateMiner",
    "TemplateRegistry",
    "TemplateRow",
    "TemplatingError",
    "UnknownLogFormat",
    "loghub_format",
    "mask",
    "rule",
    "templates_offline",
    "with_rules",
]
