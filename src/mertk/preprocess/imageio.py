"""Reading one image file: OpenCV's decoder, with a check that the file is complete.

libjpeg decodes a JPEG cut short without an error (it fills the missing rows grey and prints
``Premature end of JPEG file``, naming no file), and OpenCV returns the image. :func:`read_image`
refuses such a file, so a damaged frame is never used silently. The check is the format's own end
marker (JPEG's end-of-image ``FF D9``, PNG's ``IEND`` chunk): no library exposes libjpeg's warning
through OpenCV, and decoding twice with another library would double the cost of every frame.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import DataError

_TAIL = 4096


def truncation(path: str | Path) -> str | None:
    """Why the JPEG or PNG file at ``path`` is incomplete, or None (other formats are not checked)."""
    with open(path, "rb") as fh:
        head = fh.read(8)
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - _TAIL))
        tail = fh.read()
    if head[:2] == b"\xff\xd8":
        if not tail.rstrip(b"\x00\xff\r\n ").endswith(b"\xff\xd9"):
            return f"truncated JPEG ({size} bytes, no end-of-image marker FF D9)"
    elif head == b"\x89PNG\r\n\x1a\n":
        if b"IEND" not in tail:
            return f"truncated PNG ({size} bytes, no IEND chunk)"
    return None


def read_image(path: str | Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """The image at ``path`` as OpenCV reads it with ``flags``; a missing, unreadable or truncated file
    is a :class:`~mertk.errors.DataError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "image not found" if not path.exists() else "not a file")
    problem = truncation(path)
    if problem:
        raise DataError(path, problem)
    image = cv2.imread(str(path), flags)
    if image is None:
        raise DataError(path, "unreadable image")
    return image
