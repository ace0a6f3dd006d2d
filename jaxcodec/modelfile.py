"""Trained models on disk: one ``.npz`` (never a pickle) holding a JSON record under
``meta`` and named arrays, written atomically. A run folder stands for its ``model.npz``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from jaxcodec.errors import InputError


def model_path(path: str | Path) -> Path:
    path = Path(path)
    return path / "model.npz" if path.suffix != ".npz" else path


def save(path: str | Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    path = model_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)
    return path


def load(path: str | Path, what: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, arrays) of a model file; `what` names the kind for the error messages."""
    path = model_path(path)
    if not path.is_file():
        raise InputError(f"no {what} model at {path} (train one with: jaxcodec train {what} --data DIR -o DIR)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{path} is not a jaxcodec {what} model: {exc}") from None
    return meta, arrays
