"""Online anomaly detectors for metric series and log sessions (river-style estimators).

Importing this package loads numpy only: river, pyod, hdbscan and torch are
imported by the detectors that need them, when they first need them.
"""

from seismo.native import install as _install_native

_install_native()  # the compiled hot modules, when built and current (seismo/native.py)

# ruff: noqa: E402
from models.autoencoder import AutoEncoderDetector
from models.base import Detector, Features
from models.clusters import PatternCluster, TemplateClusterDetector
from models.ensemble import Ensemble, Explanation, Member, Verdict
from models.iforest import IsolationForestDetector
from models.microbatch import MicroBatchDetector
from models.series import MetricDetector, ScoredPoint, detect_file, score_series

__all__ = [
    "AutoEncoderDetector",
    "Detector",
    "Ensemble",
    "Explanation",
    "Features",
    "IsolationForestDetector",
    "Member",
    "MetricDetector",
    "MicroBatchDetector",
    "PatternCluster",
    "ScoredPoint",
    "TemplateClusterDetector",
    "Verdict",
    "detect_file",
    "score_series",
]
