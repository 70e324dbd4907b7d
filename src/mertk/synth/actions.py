"""Action units as smooth displacement fields placed from 68-point landmarks, and emotion programs.

An action unit is a sum of Gaussian "pushes": each sits on a landmark (or a point derived from
landmarks), moves skin along a direction given in the face's own frame (``up`` from chin to brows,
``out`` away from the face's midline) and falls off with a width proportional to the inter-ocular
distance. The field of a clip is the weighted sum of its units, scaled so that its largest
displacement equals the clip's amplitude in pixels. Fields are *forward* displacements of the
neutral face: skin at ``p`` moves to ``p + F(p)``.

FACS mappings (emotion -> units) follow the usual prototypes (Ekman and Friesen) and the variants
annotated in CASME II and SAMM; objective classes follow Davison et al. (2018), the table behind
MEGC 2018.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

# (landmark indices averaged for the centre, offset along (out, up) in IOD units,
#  direction along (out, up), width in IOD units, side: "R" = subject's right = image left, "L", "")
_Push = tuple[tuple[int, ...], tuple[float, float], tuple[float, float], float, str]

AU_PUSHES: dict[str, list[_Push]] = {
    "1": [((21,), (0.0, 0.05), (0.0, 1.0), 0.2, "R"), ((22,), (0.0, 0.05), (0.0, 1.0), 0.2, "L")],
    "2": [((17, 18), (0.0, 0.05), (0.0, 1.0), 0.22, "R"), ((25, 26), (0.0, 0.05), (0.0, 1.0), 0.22, "L")],
    "4": [((20, 21), (0.0, 0.0), (-0.6, -0.8), 0.22, "R"), ((22, 23), (0.0, 0.0), (-0.6, -0.8), 0.22, "L")],
    "5": [((37, 38), (0.0, 0.0), (0.0, 1.0), 0.1, "R"), ((43, 44), (0.0, 0.0), (0.0, 1.0), 0.1, "L")],
    "6": [((40, 41), (0.05, -0.3), (0.2, 1.0), 0.25, "R"), ((46, 47), (0.05, -0.3), (0.2, 1.0), 0.25, "L")],
    "7": [((40, 41), (0.0, 0.0), (0.0, 1.0), 0.09, "R"), ((46, 47), (0.0, 0.0), (0.0, 1.0), 0.09, "L")],
    "9": [((31,), (0.0, 0.05), (-0.2, 1.0), 0.16, "R"), ((35,), (0.0, 0.05), (-0.2, 1.0), 0.16, "L"),
          ((28,), (0.0, 0.0), (0.0, -0.6), 0.14, "")],
    "10": [((50,), (0.0, 0.0), (0.0, 1.0), 0.17, "R"), ((52,), (0.0, 0.0), (0.0, 1.0), 0.17, "L")],
    "12": [((48,), (0.0, 0.0), (0.75, 0.65), 0.2, "R"), ((54,), (0.0, 0.0), (0.75, 0.65), 0.2, "L")],
    "14": [((48,), (0.0, 0.0), (-1.0, 0.1), 0.13, "R"), ((54,), (0.0, 0.0), (-1.0, 0.1), 0.13, "L")],
    "15": [((48,), (0.0, -0.05), (0.1, -1.0), 0.18, "R"), ((54,), (0.0, -0.05), (0.1, -1.0), 0.18, "L")],
    "17": [((57, 8), (0.0, 0.0), (0.0, 1.0), 0.25, ""), ((57,), (0.0, 0.0), (0.0, 0.6), 0.12, "")],
    "20": [((48,), (0.0, 0.0), (1.0, -0.15), 0.18, "R"), ((54,), (0.0, 0.0), (1.0, -0.15), 0.18, "L")],
    "23": [((48,), (0.0, 0.0), (-0.8, 0.0), 0.1, "R"), ((54,), (0.0, 0.0), (-0.8, 0.0), 0.1, "L"),
           ((51,), (0.0, 0.0), (0.0, -0.4), 0.1, ""), ((57,), (0.0, 0.0), (0.0, 0.4), 0.1, "")],
    "25": [((62,), (0.0, 0.0), (0.0, 0.5), 0.1, ""), ((66,), (0.0, 0.0), (0.0, -1.0), 0.14, "")],
    "26": [((57, 8), (0.0, 0.0), (0.0, -1.0), 0.4, ""), ((66,), (0.0, 0.0), (0.0, -0.7), 0.2, "")],
}

# names of the action units the renderer knows (unilateral forms take an R or L prefix)
KNOWN_AUS = tuple(AU_PUSHES)


def parse_au(token: str) -> tuple[str, str]:
    """Split ``"R12"`` into (``"12"``, ``"R"``); ``"6"`` gives (``"6"``, ``""``)."""
    token = token.strip().upper().removeprefix("AU")
    side = token[0] if token[:1] in ("R", "L") else ""
    unit = token[len(side):]
    if unit not in AU_PUSHES:
        raise ValueError(f"unknown action unit {token!r}; known: {', '.join(KNOWN_AUS)}")
    return unit, side


@dataclass(frozen=True)
class FaceFrame:
    """Geometry of one face in image coordinates: landmarks, inter-ocular distance, axes."""

    landmarks: np.ndarray  # (68, 2) float
    iod: float
    up: np.ndarray  # unit vector from chin towards brows
    right: np.ndarray  # unit vector from the subject's right eye (image left) to its left eye

    @classmethod
    def from_landmarks(cls, pts: np.ndarray) -> "FaceFrame":
        pts = np.asarray(pts, dtype=np.float64)
        eye_r, eye_l = pts[36:42].mean(0), pts[42:48].mean(0)
        axis = eye_l - eye_r
        iod = float(np.hypot(*axis))
        right = axis / iod
        up = np.array([right[1], -right[0]])  # image y grows downwards
        return cls(pts, iod, up, right)


@dataclass(frozen=True)
class Field:
    """A displacement field as Gaussian pushes: centres (K, 2), vectors (K, 2) in px, widths (K,)."""

    centres: np.ndarray
    vectors: np.ndarray
    sigmas: np.ndarray

    def __call__(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Evaluate at coordinate arrays ``x``, ``y`` (same shape): returns (u, v) float32."""
        u = np.zeros(np.shape(x), np.float64)
        v = np.zeros(np.shape(x), np.float64)
        for (cx, cy), (a, b), s in zip(self.centres, self.vectors, self.sigmas):
            w = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2.0 * s * s))
            u += a * w
            v += b * w
        return u.astype(np.float32), v.astype(np.float32)

    def grid(self, height: int, width: int, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
        """The field sampled at pixel centres ``(x - shift_x, y - shift_y)``, as (H, W, 2) float32."""
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
        u, v = self(xs - shift[0], ys - shift[1])
        return np.stack([u, v], axis=-1)

    def scaled(self, factor: float) -> "Field":
        return Field(self.centres, self.vectors * factor, self.sigmas)


def au_field(face: FaceFrame, aus: Sequence[str], weights: Sequence[float]) -> Field:
    """The combined field of ``aus`` (``"12"``, ``"R14"``...) with relative ``weights``, unnormalised."""
    centres, vectors, sigmas = [], [], []
    for token, weight in zip(aus, weights):
        unit, side = parse_au(token)
        for idx, (d_out, d_up), (m_out, m_up), width, push_side in AU_PUSHES[unit]:
            if side and push_side and side != push_side:
                continue
            centre = face.landmarks[list(idx)].mean(0)
            # "out" points away from the midline (image left for the subject's right side); none on it
            out = {"R": -face.right, "L": face.right, "": np.zeros(2)}[push_side]
            centre = centre + face.iod * (d_out * out + d_up * face.up)
            vec = m_out * out + m_up * face.up
            centres.append(centre)
            vectors.append(weight * vec)
            sigmas.append(width * face.iod)
    return Field(np.array(centres, np.float64).reshape(-1, 2), np.array(vectors, np.float64).reshape(-1, 2),
                 np.array(sigmas, np.float64))


def normalised_field(face: FaceFrame, aus: Sequence[str], weights: Sequence[float], amplitude: float,
                     shape: tuple[int, int]) -> Field:
    """``au_field`` scaled so that its largest displacement on an (H, W) pixel grid is ``amplitude`` px."""
    field = au_field(face, aus, weights)
    peak = float(np.linalg.norm(field.grid(*shape), axis=-1).max())
    if peak <= 0:
        raise ValueError("action-unit field is zero everywhere (face outside the frame?)")
    return field.scaled(amplitude / peak)


def objective_class(aus: Sequence[str]) -> int:
    """MEGC 2018 objective class (1..7 for I..VII) of an AU combination (Davison et al. 2018).

    Checked in this order: VI fear (1+2+4 or 20), IV disgust (9 or 10), I happiness (bilateral 6 or
    12), II surprise (1+2, 5 or 26 without 4), V sadness (15, or 1+4), III anger (4, 7 or 23), else VII.
    """
    bilateral = {parse_au(a)[0] for a in aus if not parse_au(a)[1]}
    units = {parse_au(a)[0] for a in aus}
    if {"1", "2", "4"} <= units or "20" in units:
        return 6
    if units & {"9", "10"}:
        return 4
    if bilateral & {"6", "12"}:
        return 1
    if ({"1", "2"} <= units or units & {"5", "26"}) and "4" not in units:
        return 2
    if "15" in units or {"1", "4"} <= units:
        return 5
    if units & {"4", "7", "23"}:
        return 3
    return 7


@dataclass(frozen=True)
class Program:
    """One way to express an emotion: the native label, AU variants and their relative frequency."""

    label: str
    share: float  # share of clips in the real dataset (roughly)
    variants: tuple[tuple[str, ...], ...]
    megc: str | None  # MEGC 2019 class (negative/positive/surprise) or None (excluded, e.g. "others")


# Shares follow the published class counts (CASME II 255 clips, SAMM 159, SMIC-HS 164, CK+ 327
# labelled, FER2013 35,887). Variants repeat the AU combinations coded in the real spreadsheets.
PROGRAMS: dict[str, tuple[Program, ...]] = {
    "CASME2": (
        Program("happiness", 32, (("6", "12"), ("12",), ("6", "12", "25"), ("R12",)), "positive"),
        Program("surprise", 25, (("1", "2"), ("1", "2", "5"), ("1", "2", "25", "26"), ("5", "26")), "surprise"),
        Program("disgust", 63, (("9",), ("4", "9"), ("10",), ("4", "10"), ("9", "10"), ("4", "7", "9")), "negative"),
        Program("repression", 27, (("14",), ("15",), ("17",), ("14", "17"), ("15", "17")), "negative"),
        Program("others", 99, (("4",), ("7",), ("4", "7"), ("L14",), ("1",), ("23",)), None),
    ),
    "SAMM": (
        Program("Anger", 57, (("4",), ("4", "7"), ("4", "5", "7"), ("7", "23"), ("4", "23")), "negative"),
        Program("Contempt", 12, (("R12",), ("L14",), ("R14",), ("L12",)), "negative"),
        Program("Disgust", 9, (("9",), ("10",), ("9", "10"), ("4", "9")), "negative"),
        Program("Fear", 8, (("1", "2", "4", "20"), ("20",), ("1", "4", "20")), "negative"),
        Program("Happiness", 26, (("6", "12"), ("12",), ("6", "12", "25")), "positive"),
        Program("Sadness", 6, (("1", "4", "15"), ("15",), ("15", "17")), "negative"),
        Program("Surprise", 15, (("1", "2"), ("1", "2", "5"), ("1", "2", "26"), ("5",)), "surprise"),
        Program("Other", 26, (("14",), ("17",), ("1",), ("7",)), None),
    ),
    "SMIC": (
        Program("positive", 51, (("6", "12"), ("12",), ("12", "25"), ("6", "12", "25")), "positive"),
        Program("negative", 70, (("4",), ("4", "7"), ("9",), ("10",), ("15", "17"), ("1", "4", "15"), ("14", "17"),
                                 ("20",)), "negative"),
        Program("surprise", 43, (("1", "2"), ("1", "2", "5"), ("1", "2", "26"), ("5", "26")), "surprise"),
    ),
    # CK+ emotion codes: 1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy, 6 sadness, 7 surprise
    "CK+": (
        Program("1", 45, (("4", "5", "7"), ("4", "7", "23"), ("4", "7", "17", "23")), "negative"),
        Program("2", 18, (("R12",), ("R14",), ("L14",)), "negative"),
        Program("3", 59, (("9", "10"), ("9",), ("4", "9", "17")), "negative"),
        Program("4", 25, (("1", "2", "4", "20", "25"), ("1", "2", "4", "5", "20", "26")), "negative"),
        Program("5", 69, (("6", "12"), ("6", "12", "25")), "positive"),
        Program("6", 28, (("1", "4", "15"), ("1", "4", "15", "17")), "negative"),
        Program("7", 83, (("1", "2", "5", "26"), ("1", "2", "26"), ("1", "2", "5", "25")), "surprise"),
    ),
    # FER2013 codes: 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral
    "FER2013": (
        Program("0", 4953, (("4", "5", "7"), ("4", "7", "23")), "negative"),
        Program("1", 547, (("9", "10"), ("9", "17")), "negative"),
        Program("2", 5121, (("1", "2", "4", "20", "25"), ("1", "2", "4", "5", "20")), "negative"),
        Program("3", 8989, (("6", "12"), ("6", "12", "25")), "positive"),
        Program("4", 6077, (("1", "4", "15"), ("1", "4", "15", "17")), "negative"),
        Program("5", 4002, (("1", "2", "5", "26"), ("1", "2", "26")), "surprise"),
        Program("6", 6198, ((),), None),
    ),
}


def _variants(dataset: str, label: str) -> tuple[tuple[str, ...], ...]:
    return next(p.variants for p in PROGRAMS[dataset] if p.label == label)


# CASME's eight emotions with the AU programs of the same emotions in CASME II and SAMM ("tense" as
# CASME II's "others", which replaced it); shares roughly follow Yan et al. (2013)'s class counts.
PROGRAMS["CASME"] = (
    Program("tense", 28, _variants("CASME2", "others"), None),
    Program("happiness", 5, _variants("CASME2", "happiness"), "positive"),
    Program("repression", 40, _variants("CASME2", "repression"), "negative"),
    Program("surprise", 21, _variants("CASME2", "surprise"), "surprise"),
    Program("disgust", 88, _variants("CASME2", "disgust"), "negative"),
    Program("fear", 2, _variants("SAMM", "Fear"), "negative"),
    Program("contempt", 3, _variants("SAMM", "Contempt"), "negative"),
    Program("sadness", 6, _variants("SAMM", "Sadness"), "negative"),
)

# The newer datasets' vocabularies with the same AU programs; shares are rough (largest classes
# largest, as CAS(ME)^3 part A, 4DME micro and MMEW report them), not exact published counts.
PROGRAMS["CASME3"] = (
    Program("happy", 64, _variants("CASME2", "happiness"), "positive"),
    Program("disgust", 250, _variants("CASME2", "disgust"), "negative"),
    Program("fear", 86, _variants("SAMM", "Fear"), "negative"),
    Program("anger", 64, _variants("SAMM", "Anger"), "negative"),
    Program("sad", 57, _variants("SAMM", "Sadness"), "negative"),
    Program("surprise", 187, _variants("CASME2", "surprise"), "surprise"),
    Program("others", 152, _variants("CASME2", "others"), None),
)
PROGRAMS["4DME"] = (
    Program("Positive", 34, _variants("CASME2", "happiness"), "positive"),
    Program("Negative", 127, _variants("SMIC", "negative"), "negative"),
    Program("Surprise", 30, _variants("CASME2", "surprise"), "surprise"),
    Program("Repression", 6, _variants("CASME2", "repression"), None),
    Program("Others", 70, _variants("CASME2", "others"), None),
)
PROGRAMS["MMEW"] = (
    Program("happiness", 36, _variants("CASME2", "happiness"), "positive"),
    Program("anger", 8, _variants("SAMM", "Anger"), "negative"),
    Program("surprise", 89, _variants("CASME2", "surprise"), "surprise"),
    Program("disgust", 72, _variants("CASME2", "disgust"), "negative"),
    Program("fear", 16, _variants("SAMM", "Fear"), "negative"),
    Program("sadness", 13, _variants("SAMM", "Sadness"), "negative"),
    Program("others", 102, _variants("CASME2", "others"), None),
)


def plan_labels(dataset: str, n_subjects: int, per_subject: int, rng: np.random.Generator,
                min_subjects_per_class: int = 3) -> list[list[Program]]:
    """Choose the programs of every clip, per subject.

    Counts follow the real class shares (largest remainder), then each MEGC 2019 class
    (negative/positive/surprise) present in the dataset is topped up to ``min_subjects_per_class``
    clips (where the total allows), taken from the most frequent program of another class. Clips are dealt round-robin over subjects after
    sorting by class, so each class is spread over as many subjects as possible.
    """
    programs = PROGRAMS[dataset]
    total = n_subjects * per_subject
    shares = np.array([p.share for p in programs], np.float64)
    raw = shares / shares.sum() * total
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: total - counts.sum()]:
        counts[i] += 1
    need = min(min_subjects_per_class, n_subjects)
    for megc in ("negative", "positive", "surprise"):
        members = [i for i, p in enumerate(programs) if p.megc == megc]
        if not members:
            continue
        while sum(counts[i] for i in members) < need:
            # take a clip from the largest program whose own class stays above the minimum
            donors = [i for i, p in enumerate(programs) if counts[i] > 0 and p.megc != megc and (
                p.megc is None or sum(counts[j] for j, q in enumerate(programs) if q.megc == p.megc) > need)]
            if not donors:
                break
            donor = max(donors, key=lambda i: counts[i])
            counts[donor] -= 1
            counts[max(members, key=lambda i: shares[i])] += 1
    pool = [programs[i] for i in range(len(programs)) for _ in range(counts[i])]
    per: list[list[Program]] = [[] for _ in range(n_subjects)]
    offset = int(rng.integers(n_subjects))
    for k, program in enumerate(pool):
        per[(k + offset) % n_subjects].append(program)
    for clips in per:
        rng.shuffle(clips)  # type: ignore[arg-type]
    return per
