"""The registered names of IR-SDE and StrDiffusion and StrDiffusion's parts (no torch: inpainters import this)."""

IRSDE, STRDIFFUSION = "ir-sde", "strdiffusion"
#: StrDiffusion's three independently trained networks, each in its own sub-folder of a run's --out
PARTS = ("structure", "texture", "discriminator")

__all__ = ["IRSDE", "STRDIFFUSION", "PARTS"]
