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


def lines_and_polygons(size: int, rng: np.random.Generator) -> np.ndarray:
    """A seeded synthetic scene, HxWx3 in [0, 1]: a shaded background, 1-3 flat polygons, 2-4 straight lines across.

    Inpainting it well is continuing edges through the hole: the case structure guidance is made for.
    """
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    a, b = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    angle = rng.uniform(0, np.pi)
    t = (np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None]) / 2 + 0.25
    image = (a + (b - a) * t[..., None] * 0.5).astype(np.float32)  # a gentle two-colour gradient
    for _ in range(int(rng.integers(1, 4))):
        centre, radius = rng.uniform(0.2, 0.8, 2) * size, rng.uniform(0.15, 0.35) * size
        angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 7))))
        points = centre + radius * np.stack([np.cos(angles), np.sin(angles)], 1)
        cv2.fillPoly(image, [np.round(points * 16).astype(np.int32)], rng.uniform(0, 1, 3).tolist(), cv2.LINE_AA,
                     shift=4)
    for _ in range(int(rng.integers(2, 5))):
        # endpoints on two different sides, so every line crosses the image
        sides = rng.choice(4, 2, replace=False)
        ends = []
        for side in sides:
            u = rng.uniform(0, size - 1)
            ends.append([(0, u), (size - 1, u), (u, 0), (u, size - 1)][side])
        thickness = int(rng.integers(1, max(2, size // 16) + 1))
        cv2.line(image, tuple(int(round(v * 16)) for v in ends[0]), tuple(int(round(v * 16)) for v in ends[1]),
                 rng.uniform(0, 1, 3).tolist(), thickness, cv2.LINE_AA, shift=4)
    return np.clip(image, 0, 1)


def write_scenes(folder, count: int, size: int, seed: int) -> str:
    """``count`` PNGs of :func:`lines_and_polygons` (scene i from (seed, i)) in ``folder``; the folder, as a string."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        path = folder / f"scene-{i:04d}.png"
        if not path.exists():
            scene = lines_and_polygons(size, np.random.default_rng([seed, i]))
            cv2.imwrite(str(path), np.round(scene[..., ::-1] * 255).astype(np.uint8))
    return str(folder)


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


def lpips_present() -> bool:
    """Whether LPIPS-Alex's weights are here (the benchmarks then score and train with it)."""
    from inpaintlab.errors import MissingWeightsError
    from inpaintlab.metrics import build_metric

    try:
        build_metric("lpips-alex")
        return True
    except MissingWeightsError:
        return False
