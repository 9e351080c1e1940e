"""Still images (jpg, png, webp, bmp, tiff, gif) as RGB uint8 arrays, EXIF orientation applied.

``max_side`` bounds memory for huge pictures: JPEGs are reduced while decoding (``Image.draft``), other
formats right after.
"""

from __future__ import annotations

import os

import numpy as np

from affectllm.media.errors import MediaError, check_path


def scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) shrunk so that neither exceeds ``max_side``, aspect kept; unchanged when it fits."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def load_image(path: str | os.PathLike[str], max_side: int | None = None) -> np.ndarray:
    """Decode an image file to ``[H, W, 3]`` uint8 RGB; MediaError when it is not a readable image."""
    from PIL import Image, ImageOps

    p = check_path(path)
    try:
        with Image.open(p) as img:
            if max_side and img.format == "JPEG":
                img.draft("RGB", scaled_size(img.width, img.height, max_side))  # DCT-domain reduction
            img = ImageOps.exif_transpose(img) or img
            if img.mode != "RGB":
                img = _to_rgb(img)
            size = scaled_size(img.width, img.height, max_side)
            if size != img.size:
                img = img.resize(size, Image.Resampling.BOX if max_side else Image.Resampling.BILINEAR)
            return np.asarray(img, dtype=np.uint8).copy()  # [H, W, 3]
    except MediaError:
        raise
    except Exception as err:  # noqa: BLE001 - Pillow raises many types on broken or foreign files
        raise MediaError(p, f"not a readable image ({err})", "re-save it as jpg or png") from err


def _to_rgb(img):  # type: ignore[no-untyped-def]
    """RGB view of any Pillow mode; transparent pixels are composited on white."""
    from PIL import Image

    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")
