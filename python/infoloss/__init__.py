"""infoloss from Python: MobileNetV2 in Rust with NumPy in and out, hooks, caches and the paper's
analyses as pandas DataFrames.

>>> import numpy as np, infoloss as il
>>> m = il.MobileNetV2(width=0.35, resolution=32, classes=10, seed=0)
>>> x = np.random.default_rng(0).standard_normal((2, 3, 32, 32), dtype=np.float32)
>>> m(x).shape
(2, 10)
>>> logits, cache = m.run_with_cache(x, names="blocks.*.expand.post")
>>> cache["blocks.2.expand.post"].shape
(2, 48, 16, 16)

Every Rust error becomes a ``ValueError`` (bad input), ``OSError`` (files) or ``RuntimeError``
(internal failure) with the same one-line message the CLI prints. The GIL is released while Rust
computes.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _infoloss

__version__ = _infoloss.__version__
__all__ = [
    "MobileNetV2",
    "ZeroChannels",
    "KeepChannels",
    "Clamp",
    "GaussianNoise",
    "Linearize",
    "analyze",
    "run",
    "spiral",
    "theory",
    "read_npy",
]

Names = Union[str, Sequence[str], Callable[[str], bool], None]
Hook = Callable[[np.ndarray, str], Optional[np.ndarray]]


def _config_json(kwargs: dict) -> str:
    """Model-config keywords (snake_case, as the CLI flags) as the JSON the core reads."""
    import math

    for k, v in kwargs.items():
        vals = v if isinstance(v, (list, tuple)) else [v]
        for x in vals:
            if isinstance(x, float) and not math.isfinite(x):
                raise ValueError(f"invalid {k} = {v}: give finite numbers")
    return json.dumps({k.replace("_", "-"): v for k, v in kwargs.items()})


def _whole(name: str, v, lo: int = 0) -> int:
    """A whole number ≥ lo, or a ValueError naming it."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"invalid {name} = {v!r}: give a whole number ≥ {lo}")
    return int(v)


def _path(name: str, p) -> str:
    import os

    if not isinstance(p, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), not {type(p).__name__}")
    return os.fspath(p)


def _batch(x) -> np.ndarray:
    """An N×3×H×W float32 C-contiguous array: floats are converted (one copy), anything else refused."""
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"x has dtype {a.dtype}; pass a float array (it is converted to float32)")
    if a.ndim == 3:
        raise ValueError(f"x has shape {a.shape}; expected N×3×H×W (add a batch axis: x[None])")
    if a.ndim != 4:
        raise ValueError(f"x has shape {a.shape}; expected a float32 N×3×H×W batch")
    return np.ascontiguousarray(a, dtype=np.float32)


def _frame(csv_text: str):
    import pandas as pd

    return pd.read_csv(io.StringIO(csv_text))


@dataclass(frozen=True)
class ZeroChannels:
    """Set ``channels`` of the activation at ``site`` to zero."""

    site: Union[str, Sequence[str]]
    channels: Sequence[int]

    def _spec(self):
        return ("zero", _sites(self.site), [float(_whole("channel", c)) for c in self.channels])


@dataclass(frozen=True)
class KeepChannels:
    """Keep only ``channels`` of the activation at ``site`` (zero the others)."""

    site: Union[str, Sequence[str]]
    channels: Sequence[int]

    def _spec(self):
        return ("keep", _sites(self.site), [float(_whole("channel", c)) for c in self.channels])


@dataclass(frozen=True)
class Clamp:
    """Clamp the activation at ``site`` to ``[lo, hi]``."""

    site: Union[str, Sequence[str]]
    lo: float
    hi: float

    def _spec(self):
        return ("clamp", _sites(self.site), [float(self.lo), float(self.hi)])


@dataclass(frozen=True)
class GaussianNoise:
    """Add seeded N(0, std²) noise to the activation at ``site``."""

    site: Union[str, Sequence[str]]
    std: float
    seed: int = 0

    def _spec(self):
        seed = _whole("seed", self.seed)
        if seed >= 2**53:
            raise ValueError(f"invalid seed = {seed}: give a seed below 2**53")
        return ("noise", _sites(self.site), [float(self.std), float(seed)])


@dataclass(frozen=True)
class Linearize:
    """Replace the activation at ``site`` (a ``.post`` site or ``blocks.{i}.project``) by its
    pre-activation: the activation becomes the identity there."""

    site: Union[str, Sequence[str]]

    def _spec(self):
        return ("linearize", _sites(self.site), [])


def _sites(s) -> List[str]:
    return [s] if isinstance(s, str) else list(s)


class MobileNetV2:
    """MobileNetV2 (or any classifier architecture of infoloss: ``arch="mobilenet_v1"``).

    Keywords are the model config (the CLI flags in snake_case): ``width``, ``resolution``,
    ``classes``, ``bottleneck`` ("linear" | "relu6" | "relu"), ``activation``, ``shortcut``
    ("bottleneck" | "expansion" | "none"), ``expansion``, ``stage_expansion``, ``strides``,
    ``padding``, ``bn_eps``, ``dropout``, ``arch``. ``seed`` draws torchvision's initialisation.
    """

    def __init__(self, seed: int = 0, **config):
        self._m = _infoloss._Model.seeded(_config_json(config), _whole("seed", seed))

    @classmethod
    def _wrap(cls, core) -> "MobileNetV2":
        obj = cls.__new__(cls)
        obj._m = core
        return obj

    @classmethod
    def load(cls, path: str, **config) -> "MobileNetV2":
        """Weights from a safetensors file written by infoloss (config stored) or with torchvision's
        names (give the config keywords)."""
        return cls._wrap(_infoloss._Model.load(_path("path", path), _config_json(config)))

    @classmethod
    def from_state_dict(cls, state_dict: Dict[str, np.ndarray], **config) -> "MobileNetV2":
        """Weights from a torchvision-named state dict of arrays, e.g.
        ``{k: v.numpy() for k, v in tv.state_dict().items()}``; ``num_batches_tracked`` is ignored."""
        items = [(k, np.ascontiguousarray(np.asarray(v), dtype=np.float32)) for k, v in state_dict.items() if not k.endswith("num_batches_tracked")]
        return cls._wrap(_infoloss._Model.from_tensors([k for k, _ in items], [v for _, v in items], _config_json(config)))

    def state_dict(self) -> Dict[str, np.ndarray]:
        """Every tensor under its torchvision name (``torch.from_numpy`` each to load it into
        torchvision's ``mobilenet_v2`` with ``strict=True``, after adding ``num_batches_tracked``)."""
        return self._m.state_dict()

    def save(self, path: str) -> None:
        """Writes the weights (torchvision names, config in the metadata) atomically."""
        self._m.save(_path("path", path))

    @property
    def config(self) -> dict:
        """The resolved model config (snake_case keys)."""
        return {k.replace("-", "_"): v for k, v in json.loads(self._m.config_json()).items()}

    def __call__(self, x) -> np.ndarray:
        """Eval-mode logits (N, classes) of an N×3×H×W batch."""
        return self._m.forward(_batch(x))

    forward = __call__

    def hooks(self) -> List[dict]:
        """Every hook site in firing order: name, shape, channels, threshold n, layout, activated —
        as ``infoloss hooks --json``."""
        return json.loads(self._m.hooks_json())

    def _names(self, names: Names) -> List[str]:
        if names is None:
            return [s["name"] for s in self.hooks()]
        if callable(names):
            return [s["name"] for s in self.hooks() if names(s["name"])]
        if isinstance(names, str):
            return self._m.select(names)
        out: List[str] = []
        for n in names:
            out.extend(self._m.select(n))
        return out

    def run_with_cache(self, x, names: Names = None) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        """Logits and the activations at the sites ``names`` selects (a glob like
        ``"blocks.*.expand.post"``, a prefix, an exact name, a list of those, or a predicate on the
        name; ``None``: every site), each as an N×C×H×W array."""
        return self._m.run_with_cache(_batch(x), self._names(names))

    def run(self, x, interventions: Iterable = (), hooks: Iterable[Tuple[str, Hook]] = ()) -> np.ndarray:
        """Logits with ``interventions`` (``ZeroChannels``, ``KeepChannels``, ``Clamp``,
        ``GaussianNoise``, ``Linearize``) and Python ``hooks``: ``(site, fn)`` where
        ``fn(activation, name)`` gets one image's C×H×W float32 activation and returns an array of the
        same shape to replace it, or None. Each hook is called once per image, in image order: images
        run one after another (the batch is serialised; the GIL is taken only at the hook's site)."""
        specs = [i._spec() for i in interventions]
        return self._m.run(_batch(x), specs, [(str(s), f) for s, f in hooks])

    def __repr__(self) -> str:
        c = self.config
        return f"MobileNetV2(width={c['width']}, resolution={c['resolution']}, classes={c['classes']}, bottleneck={c['bottleneck']!r}, shortcut={c['shortcut']!r})"


def analyze(model: MobileNetV2, x, lemma2: bool = False) -> dict:
    """The analyses of ``infoloss analyze`` on a batch: ``patterns`` (positive channels per position
    against the threshold n, per site), ``channels``, ``histograms`` and, with ``lemma2``, the Lemma-2
    check at every position of the expansion layers — as pandas DataFrames."""
    return {name: _frame(text) for name, text in model._m.analyze(_batch(x), bool(lemma2))}


@dataclass
class ExperimentResult:
    """What ``run`` leaves in ``out``: the tables as DataFrames and the report's path."""

    out: str
    summary: object = field(repr=False)
    claims: object = field(repr=False)
    runs: object = field(repr=False)
    report: str = ""


def run(spec: str, out: Optional[str] = None, set: Sequence[str] = (), jobs: int = 1) -> ExperimentResult:
    """Runs an experiment spec (resuming finished runs) and returns its summary, claims and runs as
    DataFrames. ``set`` takes ``key=value`` overrides as ``--set`` does. A suite's tables are per part
    (read them from ``out/<part>/``)."""
    import os

    import pandas as pd

    spec = _path("spec", spec)
    if not os.path.exists(spec):
        raise FileNotFoundError(2, "no such spec file; give a spec such as experiments/quick.toml", spec)
    if not os.path.isfile(spec):
        raise IsADirectoryError(21, "not a spec file; give a .toml spec inside it", spec)
    jobs = _whole("jobs", jobs, 1)
    if out is None:
        try:
            import tomllib
        except ImportError as e:  # Python < 3.11
            raise ValueError("give out=DIR (reading the spec's name needs Python 3.11's tomllib)") from e
        with open(spec, "rb") as f:
            out = os.path.join("notebooks-out", tomllib.load(f)["name"])
    _infoloss.run_experiment(str(spec), str(out), list(set), int(jobs))
    read = lambda n: pd.read_csv(os.path.join(out, n)) if os.path.exists(os.path.join(out, n)) else None
    return ExperimentResult(out=str(out), summary=read("summary.csv"), claims=read("claims.csv"), runs=read("runs.csv"), report=os.path.join(out, "report.md"))


def spiral(dims: Sequence[int] = (2, 3, 5, 15, 30), seeds: Iterable[int] = range(20), points: int = 600):
    """Fig. 1: per (n, seed) the Lemma-2 invertible fraction, collapsed fraction and
    pseudo-inverse errors of a spiral embedded by a random T, as a DataFrame."""
    return _frame(_infoloss.spiral_csv([_whole("dim", d, 1) for d in dims], [_whole("seed", s) for s in seeds], _whole("points", points)))


def theory(n: Sequence[int] = (16,), t: Sequence[float] = (1, 2, 6), seeds: Iterable[int] = range(10), samples: int = 400):
    """Theorem 1 against random expansion layers: per (n, t) the empirical Lemma-2 rate with its
    Wilson interval and P(Binomial(m, ½) ≥ n), as a DataFrame."""
    return _frame(_infoloss.theory_csv([_whole("n", v, 1) for v in n], [float(v) for v in t], [_whole("seed", s) for s in seeds], _whole("samples", samples, 1)))


def read_npy(path: str) -> np.ndarray:
    """An NCHW float32 ``.npy`` batch as infoloss reads it."""
    return _infoloss.read_npy(_path("path", path))
