"""StrDiffusion (Liu et al., CVPR 2024) and its baseline IR-SDE (Luo et al. 2023): mean-reverting diffusion.

:mod:`.sde` holds the mean-reverting SDE of IR-SDE exactly as coded (cosine theta schedule, closed-form
marginals, the optimal reverse state of Eq. 4, the reverse-SDE step, the matching loss) as short pure
functions; :mod:`.structure` the structure inputs (grayscale and the edges of the known pixels);
:mod:`.unet` the IR-SDE UNet and its SPADE-conditioned texture variant; :mod:`.discriminator` the
time-conditioned discriminator that drives adaptive resampling. Importing this package does not
import torch.
"""
