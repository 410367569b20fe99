"""The trainable methods of the papers, one sub-package each (imported by the registries on first use).

A method package registers its training method in ``inpaintlab.train.METHODS`` and an inpainter
of the same name in ``inpaintlab.inpainters.INPAINTERS`` that loads what it trained.
"""
