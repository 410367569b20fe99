"""The FID Inception-v3 of pytorch-fid (pool3, 2048-d), written without torchvision.

This is the network of ``pytorch_fid.inception.InceptionV3(output_blocks=[3], resize_input=True,
normalize_input=True, use_fid_inception=True)`` (mseitzer/pytorch-fid, ``src/pytorch_fid/inception.py``):
torchvision's ``Inception3(num_classes=1008, aux_logits=False)`` with the FID patches

- ``Mixed_5b/5c/5d`` = ``FIDInceptionA``, ``Mixed_6b..6e`` = ``FIDInceptionC``,
  ``Mixed_7b`` = ``FIDInceptionE_1``: the pool branch averages with ``count_include_pad=False``
  (TensorFlow's average pool ignores the zero padding);
- ``Mixed_7c`` = ``FIDInceptionE_2``: the pool branch is a 3x3 *max* pool (stride 1, pad 1);

``BasicConv2d`` = conv (no bias) + BatchNorm (eps 0.001) + ReLU. The modules carry torchvision's
attribute names, so :meth:`FIDInceptionV3.state_dict` has exactly the keys of
``pt_inception-2015-12-05-6726825d.pth`` (``Conv2d_1a_3x3.conv.weight``, ...,
``Mixed_7c.branch_pool.bn.running_var``, ``fc.weight``, ``fc.bias``); ``fc`` (2048 -> 1008) is
loaded but unused: FID takes the pool3 features before it.

**Input handling** (pytorch-fid's ``resize_input=True, normalize_input=True``), on images in
``[0, 1]``: ``torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear",
align_corners=False)`` (no antialiasing, pytorch-fid's call exactly), then ``2 * x - 1``.
pytorch-fid feeds images through ``ToTensor`` (uint8 / 255) with no other resize, so images read
from files and passed here in ``[0, 1]`` give pytorch-fid's features. Note that this resize is
*not* TensorFlow's original FID resize, nor clean-fid's antialiased PIL resize; it is the one of
pytorch-fid, whose weights file this network loads.
"""

from __future__ import annotations

import collections
import hashlib
import threading
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .. import weights as _weights
from ..errors import BadImageError, MissingWeightsError

__all__ = [
    "WEIGHTS_FILE",
    "FEATURE_DIM",
    "INPUT_SIZE",
    "BasicConv2d",
    "FIDInceptionA",
    "InceptionB",
    "FIDInceptionC",
    "InceptionD",
    "FIDInceptionE_1",
    "FIDInceptionE_2",
    "FIDInceptionV3",
    "InceptionFeatures",
    "preprocess",
    "load_inception",
]

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FEATURE_DIM = 2048
INPUT_SIZE = 299
NUM_CLASSES = 1008  # the TF graph's 1008-way softmax (1000 classes + 8 unused)
BN_EPS = 0.001


class BasicConv2d(nn.Module):
    """Conv (no bias) + BatchNorm(eps=0.001) + ReLU: torchvision's ``inception.BasicConv2d``."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """3x3/1 average pool that, like TensorFlow's, leaves the zero padding out of the mean (pytorch-fid patch)."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    """InceptionA (35x35 grid) with the TF average pool: pytorch-fid ``FIDInceptionA``."""

    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    """InceptionB (35x35 -> 17x17 reduction): torchvision ``InceptionB`` (not patched by pytorch-fid)."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, bd, bp], 1)


class FIDInceptionC(nn.Module):
    """InceptionC (17x17 grid, factorised 7x7) with the TF average pool: pytorch-fid ``FIDInceptionC``."""

    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            bd = layer(bd)
        bp = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    """InceptionD (17x17 -> 8x8 reduction): torchvision ``InceptionD`` (not patched by pytorch-fid)."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], 1)


class _InceptionE(nn.Module):
    """InceptionE (8x8 grid, expanded 3x3 branches); subclasses choose the pool branch."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        bp = self.branch_pool(self.pool(x))
        return torch.cat([b1, b3, bd, bp], 1)


class FIDInceptionE_1(_InceptionE):
    """First InceptionE (Mixed_7b) with the TF average pool: pytorch-fid ``FIDInceptionE_1``."""

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return _tf_avg_pool(x)


class FIDInceptionE_2(_InceptionE):
    """Second InceptionE (Mixed_7c) with a 3x3/1 *max* pool branch, as in the TF FID graph: pytorch-fid ``FIDInceptionE_2``."""

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """pytorch-fid's input handling: bilinear resize to 299x299 (align_corners=False, no antialias), then ``2x - 1``."""
    x = F.interpolate(images, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return 2 * x - 1


class FIDInceptionV3(nn.Module):
    """pytorch-fid's FID Inception-v3 up to pool3 (Szegedy et al. 2016; TF graph inception-2015-12-05)."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE_1(1280)
        self.Mixed_7c = FIDInceptionE_2(2048)
        # Only here so the official file loads key for key; FID stops at pool3.
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)
        self.requires_grad_(False)
        self.eval()

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """The network on a preprocessed (N,3,299,299) batch in [-1, 1] -> (N, 2048) pool3 features."""
        # pytorch-fid block 0 .. block 3 (its maxpool1 / maxpool2 are plain 3x3/2 max pools)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N,3,H,W) in [0, 1] -> (N, 2048) pool3 features, as pytorch-fid's ``InceptionV3([3])``."""
        return self.pool3(preprocess(images))

    def load_weights(self, path: str | Path) -> "FIDInceptionV3":
        """Load pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``; a missing/extra/mis-shaped key is an error."""
        path = Path(path)
        state = _weights.read_checkpoint(path, "FID Inception checkpoint", WEIGHTS_FILE)
        if not isinstance(state, dict):
            raise MissingWeightsError(f"{path} does not hold a state dict; expected pytorch-fid's {WEIGHTS_FILE}")
        want = self.state_dict()
        # BatchNorm's batch counter is bookkeeping for training; old files may lack it.
        skip = {k for k in want if k.endswith("num_batches_tracked")}
        missing = sorted(set(want) - set(state) - skip)
        unexpected = sorted(set(state) - set(want))
        mismatched = sorted(
            k for k in set(want) & set(state)
            if k not in skip and (not isinstance(state[k], torch.Tensor) or state[k].shape != want[k].shape)
        )
        if missing or unexpected or mismatched:
            parts = [f"{len(v)} {what} (e.g. {v[0]})" for what, v in
                     (("missing keys", missing), ("unexpected keys", unexpected), ("mis-shaped tensors", mismatched))
                     if v]
            raise MissingWeightsError(
                f"{path} is not pytorch-fid's {WEIGHTS_FILE}: {'; '.join(parts)}"
            )
        self.load_state_dict({k: v for k, v in state.items() if k not in skip}, strict=False)
        return self


class InceptionFeatures:
    """Batched pool3 features of a loaded :class:`FIDInceptionV3`, with a small cache of recent batches.

    FID, P-IDS and U-IDS fed the same batch in a row compute its features once: batches are
    keyed by the SHA-256 of their float32 bytes and shape. Each image's features depend on that
    image alone (eval-mode BatchNorm), so splitting or caching never changes a result.
    """

    def __init__(self, model: FIDInceptionV3, *, device: str | torch.device = "cpu", batch_size: int = 50,
                 identity: str = "", cache_batches: int = 4):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.batch_size = batch_size
        #: names the weights (file, size, mtime) so cached reference statistics follow the network
        self.identity = identity
        self._cache: collections.OrderedDict[str, torch.Tensor] = collections.OrderedDict()
        self._cache_batches = cache_batches
        self._lock = threading.Lock()

    @staticmethod
    def _key(images: torch.Tensor) -> str:
        data = images.detach().to("cpu", torch.float32).contiguous()
        h = hashlib.sha256(str(tuple(data.shape)).encode())
        h.update(data.numpy().tobytes())
        return h.hexdigest()

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(N,3,H,W) float images in [0, 1] -> (N, 2048) float32 CPU features."""
        _check_images(images)
        key = self._key(images) if self._cache_batches else ""
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        out = torch.cat([
            self.model(images[i:i + self.batch_size].to(self.device, torch.float32)).float().cpu()
            for i in range(0, images.shape[0], self.batch_size)
        ]) if images.shape[0] else torch.empty(0, FEATURE_DIM)
        if self._cache_batches:
            with self._lock:
                self._cache[key] = out
                while len(self._cache) > self._cache_batches:
                    self._cache.popitem(last=False)
        return out


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise BadImageError(f"Inception features need images of shape (N, 3, H, W), got {shape}")
    if not images.is_floating_point():
        raise BadImageError(f"Inception features need float images in [0, 1], got {images.dtype}")


_LOADED: dict[tuple, InceptionFeatures] = {}
_LOADED_LOCK = threading.Lock()


def load_inception(device: str | torch.device = "cpu", *, path: str | Path | None = None,
                   batch_size: int = 50) -> InceptionFeatures:
    """The FID Inception with pytorch-fid's weights, found by :func:`inpaintlab.weights.resolve`.

    Extractors are shared in-process per (file, size, mtime, device, batch size), so FID, P-IDS
    and U-IDS hold one network and reuse each other's features of the same batch. Missing
    weights raise :class:`~inpaintlab.errors.MissingWeightsError`.
    """
    file = _weights.resolve(WEIGHTS_FILE, path=path)
    st = file.stat()
    device = torch.device(device)
    identity = f"{WEIGHTS_FILE}:{file.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    with _LOADED_LOCK:
        extractor = _LOADED.get((identity, str(device), batch_size))
        if extractor is None:
            same_net = next((e.model for (i, d, _), e in _LOADED.items() if i == identity and d == str(device)), None)
            model = same_net if same_net is not None else FIDInceptionV3().load_weights(file)
            extractor = InceptionFeatures(model, device=device, batch_size=batch_size, identity=identity)
            _LOADED[(identity, str(device), batch_size)] = extractor
    return extractor
