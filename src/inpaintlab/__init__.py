"""inpaintlab: run, train and measure image inpainting models, faithfully and stably.

Conventions (see DESIGN.md): images are float32 ``(N, 3, H, W)`` in ``[0, 1]``; masks are
``(N, 1, H, W)`` with **1 = hole** (to fill) and 0 = keep; randomness comes from explicit
generators.
"""

__version__ = "0.1.0"
