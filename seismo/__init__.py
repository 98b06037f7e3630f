"""Seismo's command line, settings and local infrastructure.

The processing code lives in the top-level packages the design names
(``producers``, ``stream_processors``, ``mcp_gateway``, ``schemas``,
``models``).  This package holds what ties them together for an operator:
the ``seismo`` CLI, the typed settings every component reads, topic
administration, and the local Kafka/Redis runners behind ``seismo kafka``.
"""

__version__ = "0.1.0"
