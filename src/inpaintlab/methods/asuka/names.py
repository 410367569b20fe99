"""ASUKA's registered names (torch-free: the command line and the registries read them)."""

#: the three parts trained separately, and the composed inpainter
MAE_METHOD, ALIGN_METHOD, DECODER_METHOD, ASUKA = "asuka-mae", "asuka-align", "asuka-decoder", "asuka"

__all__ = ["MAE_METHOD", "ALIGN_METHOD", "DECODER_METHOD", "ASUKA"]
