"""Loghub log formats: extract the ``Content`` field from raw Loghub lines.

The format strings are the published benchmark settings of the logpai
loghub/logparser benchmark, one per Loghub system. A format such as
``<Date> <Time> <Level> <Component>: <Content>`` names header fields in angle
brackets; everything else is literal text (runs of spaces match any whitespace, and
regex syntax such as ``\\[`` or ``( ... )?`` is kept, exactly as logparser does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stream_processors.normalize.templating.exceptions import UnknownLogFormat

LOGHUB_FORMATS: dict[str, str] = {
    "HDFS": "<Date> <Time> <Pid> <Level> <Component>: <Content>",
    "Hadoop": r"<Date> <Time> <Level> \[<Process>\] <Component>: <Content>",
    "Spark": "<Date> <Time> <Level> <Component>: <Content>",
    "Zookeeper": r"<Date> <Time> - <Level>  \[<Node>:<Component>@<Id>\] - <Content>",
    "BGL": (
        "<Label> <Timestamp> <Date> <Node> <Time> <NodeRepeat> <Type> <Component> "
        "<Level> <Content>"
    ),
    "HPC": "<LogId> <Node> <Component> <State> <Time> <Flag> <Content>",
    "Thunderbird": (
        "<Label> <Timestamp> <Date> <User> <Month> <Day> <Time> <Location> "
        r"<Component>(\[<PID>\])?: <Content>"
    ),
    "Windows": "<Date> <Time>, <Level>                  <Component>    <Content>",
    "Linux": r"<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>",
    "Android": "<Date> <Time>  <Pid>  <Tid> <Level> <Component>: <Content>",
    "HealthApp": r"<Time>\|<Component>\|<Pid>\|<Content>",
    "Apache": r"\[<Time>\] \[<Level>\] <Content>",
    "Proxifier": r"\[<Time>\] <Program> - <Content>",
    "OpenSSH": r"<Date> <Day> <Time> <Component> sshd\[<Pid>\]: <Content>",
    "OpenStack": r"<Logrecord> <Date> <Time> <Pid> <Level> <Component> \[<ADDR>\] <Content>",
    "Mac": r"<Month>  <Date> <Time> <User> <Component>\[<PID>\]( \(<Address>\))?: <Content>",
}
"""Loghub system name -> logparser ``log_format`` string."""

_FIELD = re.compile(r"(<[^<>]+>)")
_SPACES = re.compile(" +")


@dataclass(frozen=True, slots=True)
class LogFormat:
    """A compiled log format: header names and the anchored regex that splits a line."""

    name: str
    template: str
    headers: tuple[str, ...]
    regex: re.Pattern[str]

    def parse(self, line: str) -> dict[str, str] | None:
        """Split ``line`` into header fields; ``None`` when the line does not fit.

        The line is stripped first (as logparser does). Never raises on input.
        """
        match = self.regex.match(line.strip())
        if match is None:
            return None
        return {name: match.group(name) or "" for name in self.headers}

    def content(self, line: str) -> str | None:
        """Return the ``Content`` field of ``line`` or ``None`` when the line does not fit."""
        match = self.regex.match(line.strip())
        if match is None:
            return None
        return match.group("Content")


def compile_format(template: str, name: str = "custom") -> LogFormat:
    """Compile a logparser-style format string into a :class:`LogFormat`.

    Header names must be valid regex group names and must include ``Content``.
    Raises :class:`UnknownLogFormat` when the template has no ``<Content>`` field and
    ``re.error`` when its literal parts are not a valid regex.
    """
    headers: list[str] = []
    parts: list[str] = []
    for index, piece in enumerate(_FIELD.split(template)):
        if index % 2 == 0:
            parts.append(_SPACES.sub(r"\\s+", piece))
        else:
            header = piece.strip("<>")
            headers.append(header)
            parts.append(f"(?P<{header}>.*?)")
    if "Content" not in headers:
        raise UnknownLogFormat(f"log format {template!r} has no <Content> field")
    regex = re.compile("^" + "".join(parts) + "$")
    return LogFormat(name=name, template=template, headers=tuple(headers), regex=regex)


def loghub_systems() -> tuple[str, ...]:
    """Names of the Loghub systems with a known format, in the benchmark's order."""
    return tuple(LOGHUB_FORMATS)


def loghub_format(system: str) -> LogFormat:
    """The compiled Loghub format of ``system`` (case-insensitive, e.g. ``"hdfs"``).

    Raises :class:`UnknownLogFormat` listing the known systems when there is none.
    """
    for known, template in LOGHUB_FORMATS.items():
        if known.lower() == system.lower():
            return compile_format(template, name=known)
    raise UnknownLogFormat(
        f"unknown Loghub system {system!r}; known: {', '.join(LOGHUB_FORMATS)}"
    )
