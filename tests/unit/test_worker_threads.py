"""Each worker process limits native threads (BLAS, OpenMP) to ``SEISMO_WORKER_NATIVE_THREADS``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydantic import ValidationError

from seismo.settings import Settings

_PROBE = """
import json, os, numpy
from threadpoolctl import threadpool_info
from stream_processors.runtime.worker import limit_native_threads
limit_native_threads({n})
print(json.dumps({{"pools": [p["num_threads"] for p in threadpool_info()],
                  "omp": os.environ["OMP_NUM_THREADS"], "blas": os.environ["OPENBLAS_NUM_THREADS"]}}))
"""


@pytest.mark.parametrize("threads", [1, 3])
def test_native_thread_pools_and_the_environment_follow_the_setting(threads: int) -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE.format(n=threads)], capture_output=True, text=True,
                          check=True, timeout=120)
    seen = json.loads(done.stdout)
    assert seen["pools"], "numpy's BLAS should be a visible thread pool"
    assert set(seen["pools"]) == {threads}
    assert seen["omp"] == seen["blas"] == str(threads)


def test_the_default_is_one_thread_and_zero_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().worker_native_threads == 1
    monkeypatch.setenv("SEISMO_WORKER_NATIVE_THREADS", "0")
    with pytest.raises(ValidationError, match="worker_native_threads"):
        Settings()
