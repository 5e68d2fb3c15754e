"""Build a model without allocating its weights (torch 1.13 has no `torch.device`
context manager): tensor factories are redirected to the meta device while the model is
constructed. Used to check the full 2.37 B-parameter layout in milliseconds."""
from __future__ import annotations

import contextlib
import functools

import torch

_FACTORIES = ("empty", "zeros", "ones", "randn", "rand", "full", "tensor")


@contextlib.contextmanager
def meta_device():
    saved = {name: getattr(torch, name) for name in _FACTORIES}

    def on_meta(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            kwargs["device"] = "meta"
            return fn(*args, **kwargs)
        return wrapper

    try:
        for name, fn in saved.items():
            setattr(torch, name, on_meta(fn))
        yield
    finally:
        for name, fn in saved.items():
            setattr(torch, name, fn)
