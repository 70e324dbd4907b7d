"""Face detection and 68-point landmarks on a real photo shipped with scikit-image."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from mertk.errors import DataError, MertkError
from mertk.preprocess.face import FaceBox, NoFaceError, detect_face, detect_faces, face_landmarks, landmarks, predictor_path


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


def test_predictor_file_found_without_importing_package() -> None:
    path = predictor_path()
    assert path.name == "shape_predictor_68_face_landmarks.dat"
    assert path.stat().st_size > 50_000_000


def test_astronaut_face_box(astronaut: np.ndarray) -> None:
    box = detect_face(astronaut)
    # Eileen Collins' face sits in the upper middle of the 512x512 photo
    assert 150 < box.left < 200 and 60 < box.top < 100
    assert 70 < box.width < 120 and 70 < box.height < 120
    assert box.width == box.right - box.left and box.height == box.bottom - box.top


def test_landmarks_order_and_inside_box(astronaut: np.ndarray) -> None:
    box, pts = face_landmarks(astronaut)
    assert pts.shape == (68, 2) and pts.dtype == np.float32
    margin = 0.15 * box.width
    assert np.all(pts[:, 0] > box.left - margin) and np.all(pts[:, 0] < box.right + margin)
    assert np.all(pts[:, 1] > box.top - margin) and np.all(pts[:, 1] < box.bottom + margin)
    left_eye, right_eye = pts[36:42].mean(0), pts[42:48].mean(0)
    nose_tip, mouth = pts[30], pts[48:68].mean(0)
    assert left_eye[0] < right_eye[0]
    assert max(left_eye[1], right_eye[1]) < nose_tip[1] < mouth[1]
    assert pts[17:27, 1].max() < min(left_eye[1], right_eye[1])  # brows above the eyes
    assert pts[8, 1] > mouth[1]  # chin below the mouth


def test_grey_and_colour_give_the_same_face(astronaut: np.ndarray) -> None:
    grey = (astronaut @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    box_c, box_g = detect_face(astronaut), detect_face(grey)
    assert abs(box_c.left - box_g.left) <= 8 and abs(box_c.top - box_g.top) <= 8
    pts = landmarks(grey, box_g)
    assert pts.shape == (68, 2)


def test_blank_image_raises_no_face_error_naming_source() -> None:
    blank = np.full((120, 160, 3), 128, np.uint8)
    assert detect_faces(blank) == []
    with pytest.raises(NoFaceError, match=r"frames/img1\.jpg: no face found") as info:
        face_landmarks(blank, source="frames/img1.jpg")
    assert isinstance(info.value, DataError) and isinstance(info.value, MertkError)


def test_facebox_is_frozen() -> None:
    box = FaceBox(1, 2, 11, 22)
    assert (box.width, box.height) == (10, 20)
    with pytest.raises(AttributeError):
        box.left = 0  # type: ignore[misc]
