"""Inpainters: the protocol, the compositing wrapper and the registered backends.

``inpaint(images, hole, *, generator) -> images``, batched, same shape in and out. The wrapper
(:class:`Inpainter`, :mod:`.wrapper`), not the backend, composites: outside the hole the output
equals the input exactly, whatever the backend did there, and the backend's own change there
(the *kept-region drift*) is measured on every call.

Backends are not imported here: :data:`INPAINTERS` imports every module of this package (and of
the method packages) on its first look-up, so a new backend is one module with one
``INPAINTERS.register`` call. Names load on first use, so the command line starts without torch.
"""

from ..lazy import lazy_exports

_LAZY = {name: "base" for name in ("INPAINTERS", "Backend", "NumpyBackend", "Requirements", "Generators",
                                   "per_sample_generators")}
_LAZY |= {name: "wrapper" for name in ("Inpainter", "InpaintOutput", "load_inpainter", "build_options")}
_LAZY["COMPOSITORS"] = "compositing"

__all__ = sorted(_LAZY)
__getattr__ = lazy_exports(__name__, _LAZY)
