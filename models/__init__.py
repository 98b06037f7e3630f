"""Online anomaly detectors for metric series and log sessions (river-style estimators)."""

from models.base import Detector, Features
from models.ensemble import Ensemble, Explanation, Member, Verdict
from models.series import MetricDetector, ScoredPoint, detect_file, score_series

__all__ = [
    "Detector",
    "Ensemble",
    "Explanation",
    "Features",
    "Member",
    "MetricDetector",
    "ScoredPoint",
    "Verdict",
    "detect_file",
    "score_series",
]
