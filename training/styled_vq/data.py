"""Crops built by training/data/build_crops.py: uint8 [N, S, S, 3] arrays."""
from __future__ import annotations

import os

import numpy as np
import torch

from .paths import DATA_ROOT


def crops_path(split: str, size: int, root: str = DATA_ROOT) -> str:
    return os.path.join(root, f"crops{size}", f"{split}.npy")


def load_crops(split: str, size: int, root: str = DATA_ROOT) -> np.ndarray:
    path = crops_path(split, size, root)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: build it with training/data/ (see training/README.md)")
    return np.load(path, mmap_mode="r")


def to_batch(arr: np.ndarray) -> torch.Tensor:
    """uint8 [B,H,W,3] -> float32 [B,3,H,W] in [-1, 1] (the same op as preprocess.to_model_input)."""
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


class Batches:
    """Endless shuffled batches with a resumable position (epoch, index, seed)."""

    def __init__(self, arr: np.ndarray, batch: int, seed: int, flip: bool = True):
        self.arr, self.batch, self.seed, self.flip = arr, batch, seed, flip
        self.epoch, self.pos = 0, 0
        self._perm = self._make_perm()

    def _make_perm(self):
        return np.random.default_rng(self.seed + self.epoch).permutation(len(self.arr))

    def state(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state(self, s: dict) -> None:
        self.epoch, self.pos = s["epoch"], s["pos"]
        self._perm = self._make_perm()

    def next(self) -> torch.Tensor:
        if self.pos + self.batch > len(self._perm):
            self.epoch, self.pos = self.epoch + 1, 0
            self._perm = self._make_perm()
        idx = np.sort(self._perm[self.pos:self.pos + self.batch])
        self.pos += self.batch
        x = to_batch(self.arr[idx])
        if self.flip:
            rng = np.random.default_rng((self.seed, self.epoch, self.pos))
            flips = torch.from_numpy(rng.random(len(idx)) < 0.5)
            x[flips] = x[flips].flip(-1)
        return x
