"""A small MLP autoencoder, trained with torch in micro-batches, scored in numpy.

torch is optional (the ``deep`` extra) and imported only inside :func:`train`,
i.e. at a detector's first refit: importing this module, building, pickling,
restoring and scoring a detector never load it, so the CLI starts fast and a
detector trained elsewhere scores where torch is absent.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np

from models.microbatch import Matrix, MicroBatchDetector
from models.state import Document, StateError, pack, pack_matrix, unpack, unpack_matrix

Layers = list[tuple[Matrix, Matrix]]
"""``(weight, bias)`` of each linear layer; weight is ``(out, in)`` as in torch."""


def init_layers(sizes: tuple[int, ...], seed: int) -> Layers:
    """Glorot-uniform weights and zero biases for the layer widths ``sizes``."""
    rng = np.random.default_rng(seed)
    layers: Layers = []
    for fan_in, fan_out in pairwise(sizes):
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        layers.append((rng.uniform(-bound, bound, size=(fan_out, fan_in)), np.zeros(fan_out)))
    return layers


def reconstruct(layers: Layers, z: Matrix) -> Matrix:
    """The autoencoder's output for the rows of ``z`` (tanh between linear layers)."""
    h = z
    for i, (weight, bias) in enumerate(layers):
        h = h @ weight.T + bias
        if i < len(layers) - 1:
            h = np.tanh(h)
    return h


def _adam_step(params: list[Any], grads: tuple[Any, ...], moments: list[Any], lr: float, step: int) -> None:
    """One Adam update (Kingma & Ba 2015, default betas), in place.

    Written out because constructing any ``torch.optim`` optimizer imports
    ``torch._dynamo`` (about 900 modules, seconds) at the first refit.
    """
    import torch  # type: ignore[import-not-found, unused-ignore]  # optional: the deep extra

    beta1, beta2, eps = 0.9, 0.999, 1e-8
    with torch.no_grad():
        for param, grad, (mean, var) in zip(params, grads, moments, strict=True):
            mean.mul_(beta1).add_(grad, alpha=1.0 - beta1)
            var.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
            denom = (var / (1.0 - beta2**step)).sqrt_().add_(eps)
            param.addcdiv_(mean, denom, value=-lr / (1.0 - beta1**step))


def train(layers: Layers, z: Matrix, epochs: int, batch_size: int, learning_rate: float, seed: int) -> Layers:
    """``layers`` after ``epochs`` of Adam on the mean squared reconstruction error of ``z``.

    Deterministic on CPU for a given seed: the starting weights are given, the
    shuffling uses a private ``torch.Generator``, and torch's global RNG is neither
    read nor reseeded (no ``torch.nn`` module is built).  Returns float64 copies.
    """
    import torch  # type: ignore[import-not-found, unused-ignore]  # optional: the deep extra

    params = [torch.tensor(a, dtype=torch.float32, requires_grad=True) for layer in layers for a in layer]

    def forward(h: Any) -> Any:
        for i in range(0, len(params), 2):
            h = torch.nn.functional.linear(h, params[i], params[i + 1])
            if i < len(params) - 2:
                h = torch.tanh(h)
        return h

    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
    data = torch.tensor(z, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    step = 0
    for _ in range(epochs):
        order = torch.randperm(len(data), generator=generator)
        for start in range(0, len(data), batch_size):
            batch = data[order[start : start + batch_size]]
            loss = torch.nn.functional.mse_loss(forward(batch), batch)
            grads = torch.autograd.grad(loss, params)
            step += 1
            _adam_step(params, grads, moments, learning_rate, step)
    arrays = [np.array(p.detach().numpy(), dtype=np.float64) for p in params]
    return list(zip(arrays[::2], arrays[1::2], strict=True))


class AutoEncoderDetector(MicroBatchDetector):
    """Reconstruction error of a ``d-hidden-latent-hidden-d`` autoencoder, as a rank in [0, 1].

    At each refit the window is standardized (mean, standard deviation; a
    constant column keeps scale 1) and the network trains ``epochs`` passes over
    it, starting from the previous fit's weights while the columns are unchanged
    (from fresh seeded weights otherwise).  ``score_one`` is the fraction of the
    window's own reconstruction errors that are strictly below the point's, so
    about uniform for points like the window and 1.0 for a point reconstructed
    worse than all of them; 0.0 before the first fit of ``min_samples`` points.
    The bottleneck has ``min(latent, d - 1)`` units (at least 1).  Same seed, same
    data: same scores.  Scoring is a numpy forward pass; only refits need torch.
    """

    def __init__(
        self,
        hidden: int = 16,
        latent: int = 4,
        epochs: int = 20,
        batch_size: int = 32,
        learning_rate: float = 5e-3,
        window: int = 512,
        min_samples: int = 64,
        refit_every: int = 128,
        features: tuple[str, ...] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(window, min_samples, refit_every, features, seed)
        self.hidden = hidden
        self.latent = latent
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self._layers: Layers = []
        self._mean: Matrix = np.zeros(0)
        self._scale: Matrix = np.ones(0)
        self._errors: Matrix = np.zeros(0)  # the window's reconstruction errors, sorted

    STATE_FORMAT = "seismo.autoencoder"

    def _dump_model(self) -> Document:
        return {
            "layers": [[pack_matrix(w), pack(b)] for w, b in self._layers],
            "mean": pack(self._mean), "scale": pack(self._scale), "errors": pack(self._errors),
        }

    def _load_model(self, state: Document) -> None:
        layers: Layers = [(unpack_matrix(w, 2), unpack(b)) for w, b in state["layers"]]
        d = len(self.columns)
        width = d
        for weight, bias in layers:
            if weight.shape[1] != width or bias.shape != (weight.shape[0],):
                raise StateError("autoencoder layers do not chain")
            width = weight.shape[0]
        mean, scale, errors = unpack(state["mean"]), unpack(state["scale"]), unpack(state["errors"])
        if width != d or len(mean) != d or len(scale) != d or not len(errors):
            raise StateError(f"an autoencoder state that does not fit {d} columns")
        self._layers, self._mean, self._scale, self._errors = layers, mean, scale, errors

    def _errors_of(self, z: Matrix) -> Matrix:
        return np.asarray(np.mean((reconstruct(self._layers, z) - z) ** 2, axis=1), dtype=np.float64)

    def _fit(self, matrix: Matrix, columns: tuple[str, ...]) -> None:
        d = len(columns)
        self._mean = matrix.mean(axis=0)
        std = matrix.std(axis=0)
        self._scale = np.where(std > 1e-12, std, 1.0)
        z = (matrix - self._mean) / self._scale
        if columns != self.columns or not self._layers:
            sizes = (d, self.hidden, max(1, min(self.latent, d - 1)), self.hidden, d)
            self._layers = init_layers(sizes, self.seed)
        seed = self.seed + self.fits
        self._layers = train(self._layers, z, self.epochs, self.batch_size, self.learning_rate, seed)
        self._errors = np.sort(self._errors_of(z))

    def _score(self, row: Matrix) -> float:
        if not self._layers:
            return 0.0
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: inf error, score 1.0
            error = self._errors_of(((row - self._mean) / self._scale)[None, :])[0]
        if not np.isfinite(error):
            return 1.0
        return float(np.searchsorted(self._errors, error, side="left")) / len(self._errors)
