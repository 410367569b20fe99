"""What the reproduction benchmarks share: held-out crops of the built-in photos, and child processes on one thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import cv2
import numpy as np


def right_quarter_crops(size: int) -> list[np.ndarray]:
    """Three square crops (top, middle, bottom) of the right quarter of every built-in photo, HxWx3 in [0, 1].

    Training runs with ``--holdout right`` never see these columns.
    """
    from inpaintlab.datasets import open_image_set

    source = open_image_set("builtin", size=None)
    crops = []
    for i in range(len(source)):
        image = source.read(i)
        h, w = image.shape[:2]
        x0 = (3 * w) // 4
        side = min(h, w - x0)
        for top in (0, (h - side) // 2, h - side):
            window = np.ascontiguousarray(image[top:top + side, x0:x0 + side])
            crop = cv2.resize(window, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_CUBIC)
            crops.append(np.clip(crop, 0, 1))
    return crops


def launch_child(script: str, flag: str, spec: dict, argv: list[str]) -> float:
    """Run ``script flag SPEC argv`` with one intra-op thread (jobs run side by side); its seconds, or exit on failure.

    One thread per job: on 2 shared cores two threads per process spin-wait and run slower than one.
    """
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, script, flag, json.dumps(spec), *argv], env=env, capture_output=True,
                          text=True)
    if done.returncode:
        raise SystemExit(f"{spec.get('name', spec.get('out'))} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - t0
