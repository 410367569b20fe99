"""Training: the loop every trainable method shares, on Lightning.

A method is a :class:`~.method.TrainableMethod` (a LightningModule with a typed ``Config``
dataclass) registered in :data:`METHODS` under a name; its package registers an inpainter of the
same name that loads what it trained. ``inpaintlab train METHOD --data SOURCE --out DIR`` runs it
through :class:`~.loop.TrainRun`: random crops and masks keyed by (seed, sample position), held-out
validation pairs, metrics and sample grids, checkpoints that resume exactly, EMA, and an export
(safetensors + JSON) that loads without Lightning and without unpickling anything.

Names load on first use: Lightning and torch are not imported by ``inpaintlab --help``.
"""

from ..lazy import lazy_exports

_LAZY = {"METHODS": "method", "TrainableMethod": "method", "TrainConfig": "config", "TrainRun": "loop",
         "export_run": "export", "load_export": "export", "read_trained": "export"}

__all__ = sorted(_LAZY)
__getattr__ = lazy_exports(__name__, _LAZY)
