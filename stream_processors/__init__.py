"""The stream steps (normalize, score, correlate) and the runtime they share."""

from seismo.native import install as _install_native

_install_native()  # the compiled hot modules, when built and current (seismo/native.py)
