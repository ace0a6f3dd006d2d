"""Still images: reading and writing files, and a folder of photos for training.

Images are uint8 arrays [H, W, C] with C = 1 (grayscale), 3 (RGB) or 4 (RGBA), as the
file holds them; what a codec does with gray or alpha is the codec's choice.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jaxcodec.data.media import IMAGE_SUFFIXES, atomic_path, dataset_files
from jaxcodec.errors import InputError

log = logging.getLogger(__name__)
IMAGE_OUTPUTS = (".png", ".bmp", ".tif", ".tiff")  # lossless formats a decode may write
MAX_PIXELS = 1 << 28  # refuse decompression bombs before decoding them


def read_image(path: str | Path) -> np.ndarray:
    """An 8-bit image file as uint8 [H, W, C], C in (1, 3, 4)."""
    from PIL import Image

    path = Path(path)
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise InputError(f"{path} is {im.width}x{im.height}: larger than {MAX_PIXELS:,} pixels")
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                raise InputError(f"{path}: only 8-bit images are supported (this one is {mode}); "
                                 "convert it to 8 bits first")
            if mode not in ("L", "RGB", "RGBA"):
                has_alpha = "A" in mode or "a" in mode or "transparency" in im.info
                im = im.convert("RGBA" if has_alpha else "L" if mode == "1" else "RGB")
            img = np.asarray(im)
    except InputError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"cannot read image {path}: {exc}") from None
    if img.ndim == 2:
        img = img[..., None]
    if img.size == 0:
        raise InputError(f"{path} holds no pixels")
    return np.ascontiguousarray(img, np.uint8)


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write uint8 [H, W, C] losslessly (PNG, BMP or TIFF by suffix), atomically."""
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() not in IMAGE_OUTPUTS:
        raise InputError(f"cannot write {path.suffix or 'a file without suffix'}: decoded images are written as "
                         f"{', '.join(IMAGE_OUTPUTS)}")
    img = np.asarray(image, np.uint8)
    img = img[..., 0] if img.shape[-1] == 1 else img
    with atomic_path(path) as tmp:
        Image.fromarray(img).save(tmp)


def downscale(image: np.ndarray, longest: int) -> np.ndarray:
    """Area-average an image so its longer side is at most `longest` pixels."""
    from PIL import Image

    h, w = image.shape[:2]
    factor = longest / max(h, w)
    if factor >= 1:
        return image
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    squeeze = image.shape[-1] == 1
    out = np.asarray(Image.fromarray(image[..., 0] if squeeze else image).resize(size, Image.Resampling.BOX))
    return out[..., None] if squeeze else out


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Gray to RGB by repetition; alpha is dropped (training crops only)."""
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]


@dataclass
class ImageFolder:
    """Every readable image under a folder as RGB, split train / held out by a fixed
    function of each file's relative path (the same rule as audio folders).

    Large photos are kept at two scales (longer side ``longest`` and half that): training
    crops then see both fine texture and wider context, and a 20-megapixel wallpaper
    does not sit in memory at full size.
    """

    train: list[np.ndarray]
    valid: list[np.ndarray]
    train_names: list[str]
    valid_names: list[str]

    @staticmethod
    def load(folder: str | Path, valid_percent: float = 10.0, longest: int = 1536,
             valid_folder: str | Path | None = None) -> ImageFolder:
        """With `valid_folder`, every image of `folder` trains and that folder's are held out."""
        folder = Path(folder)
        files = dataset_files(folder, IMAGE_SUFFIXES, "images")
        out = ImageFolder([], [], [], [])
        if valid_folder is not None:
            held = ImageFolder.load(valid_folder, 100.0, longest)
            out.valid, out.valid_names = held.valid, held.valid_names
            valid_percent = 0.0
        for f in files:
            try:
                img = as_rgb(read_image(f))
            except InputError as exc:
                log.warning("skipping %s: %s", f, exc)
                continue
            rel = f.relative_to(folder).as_posix()
            if valid_percent and zlib.crc32(rel.encode()) % 1000 < valid_percent * 10:
                out.valid.append(downscale(img, longest // 2))
                out.valid_names.append(rel)
            else:
                out.train.append(downscale(img, longest))
                out.train_names.append(rel)
        if not out.train and valid_percent < 100:
            raise InputError(f"no readable training images in {folder}")
        return out

    def sampler(self, batch: int, crop: int, qualities: int, seed: int):
        """step -> {"x": [batch, crop, crop, 3] float32 in [0, 1], "q": [batch] int32}:
        random crops (flipped half the time) at either scale, and a random quality each."""
        scales = [[img, downscale(img, max(img.shape[:2]) // 2)] for img in self.train]
        weights = np.array([img.shape[0] * img.shape[1] for img in self.train], np.float64) ** 0.5
        probs = weights / weights.sum()

        def sample(step: int) -> dict[str, np.ndarray]:
            rng = np.random.default_rng([seed, step])
            x = np.zeros((batch, crop, crop, 3), np.float32)
            for i, k in enumerate(rng.choice(len(scales), batch, p=probs)):
                img = scales[k][int(rng.integers(2))]
                h, w = img.shape[:2]
                if min(h, w) < crop:
                    img = scales[k][0]
                    h, w = img.shape[:2]
                top, left = int(rng.integers(0, max(h - crop, 0) + 1)), int(rng.integers(0, max(w - crop, 0) + 1))
                patch = img[top:top + crop, left:left + crop]
                if rng.random() < 0.5:
                    patch = patch[:, ::-1]
                x[i, :patch.shape[0], :patch.shape[1]] = patch / 255.0
            return {"x": x, "q": rng.integers(0, qualities, batch).astype(np.int32)}

        return sample
