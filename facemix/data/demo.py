"""Built-in demo data: procedurally drawn faces in the two real Kaggle layouts.

Why procedural: facemix must train out of the box with no download, and the demo must need real learning, so that
what a user sees on it says something about the pipeline. Faces vary in position, scale, rotation, skin tone, hair,
background and lighting; masks (several colours and shapes) cover nose and mouth; fakes carry GAN-like defects
(mismatched eyes, asymmetric features, blending seams, checkerboard up-sampling texture). Both sources contain real
faces, so neither image size nor source alone gives the merged class.

Layouts written (as the real downloads are laid out):
    face_mask/{Train,Validation,Test}/{WithMask,WithoutMask}/*.jpg      ~120-190 px ("Face Mask 12K")
    real_and_fake_face/{training_real,training_fake}/*.jpg              600 px (Yonsei "Real and Fake Face Detection")

Usage: ``facemix-demo [scale=0.1] [seed=0] [root=...]`` (or ``python -m facemix.demo ...``); training draws the
demo on first use by itself.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facemix.data.progress import track
from facemix.data.shared import build_once, private_name, remove_leftovers

# Sizes of the real data sets; the demo keeps their proportions (fake is the small minority once merged).
REAL_COUNTS = {
    "face_mask": {"Train": 5000, "Validation": 400, "Test": 496},  # per class, WithMask and WithoutMask alike
    "real_and_fake_face": {"training_real": 1081, "training_fake": 960},
}
STAMP = "DEMO.json"
VERSION = 1

SKIN = np.array([[255, 224, 196], [241, 194, 155], [224, 172, 125], [198, 134, 86], [141, 85, 54], [95, 60, 40]])
HAIR = np.array([[20, 17, 15], [60, 40, 30], [120, 80, 50], [200, 160, 100], [160, 60, 30], [140, 140, 140]])
IRIS = np.array([[70, 40, 20], [40, 90, 160], [60, 120, 60], [110, 90, 60], [20, 20, 20]])
MASK_COLOURS = np.array(
    [[150, 200, 235], [245, 245, 245], [30, 30, 35], [120, 120, 125], [230, 160, 190], [40, 60, 140]]
)


@dataclass(frozen=True)
class Face:
    """Where a face sits: centre, half-axes and rotation, plus the colours drawn with."""

    cx: float
    cy: float
    a: float
    b: float
    angle: float
    skin: np.ndarray
    hair: np.ndarray

    def point(self, u: float, v: float) -> tuple[int, int]:
        """Face-local (u, v) in [-1, 1] to integer image coordinates."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        x = self.cx + self.a * u * c - self.b * v * s
        y = self.cy + self.a * u * s + self.b * v * c
        return int(round(x)), int(round(y))

    def points(self, uv: np.ndarray) -> np.ndarray:
        return np.array([self.point(u, v) for u, v in uv], dtype=np.int32)

    @property
    def degrees(self) -> float:
        return math.degrees(self.angle)


def _colour(rng: np.random.Generator, palette: np.ndarray, jitter: float = 18) -> np.ndarray:
    base = palette[rng.integers(len(palette))].astype(float)
    return np.clip(base + rng.normal(0, jitter, 3), 0, 255)


def _tup(c: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(v) for v in c)


def _ellipse(img, face: Face, at, radii, colour, thickness=-1, arc=(0, 360), extra_deg=0.0) -> None:
    """An ellipse in face coordinates: centre ``at`` = (u, v), ``radii`` as fractions of the face's half-axes."""
    (u, v), (ru, rv) = at, radii
    cv2.ellipse(
        img,
        face.point(u, v),
        (max(1, int(face.a * ru)), max(1, int(face.b * rv))),
        face.degrees + extra_deg,
        arc[0],
        arc[1],
        _tup(colour),
        thickness,
        cv2.LINE_AA,
    )


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    theta = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
    t = math.cos(theta) * xx + math.sin(theta) * yy
    t = (t - t.min()) / (np.ptp(t) + 1e-6)
    img = (c1 * (1 - t[..., None]) + c2 * t[..., None]).astype(np.uint8)
    for _ in range(rng.integers(0, 6)):  # clutter, so the background is not a flat cue
        colour = _tup(rng.uniform(0, 255, 3))
        x, y = int(rng.uniform(0, w)), int(rng.uniform(0, h))
        r = int(rng.uniform(0.05, 0.3) * min(h, w))
        if rng.random() < 0.5:
            cv2.circle(img, (x, y), r, colour, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(img, (x - r, y - r // 2), (x + r, y + r // 2), colour, -1)
    return img


def _eye(img, face: Face, u: float, v: float, iris: np.ndarray, size: float = 1.0) -> None:
    _ellipse(img, face, (u, v), (0.17 * size, 0.075 * size), np.array([245, 245, 240]))
    cv2.circle(img, face.point(u, v), max(1, int(face.a * 0.075 * size)), _tup(iris), -1, cv2.LINE_AA)
    cv2.circle(img, face.point(u, v), max(1, int(face.a * 0.032 * size)), (10, 10, 10), -1, cv2.LINE_AA)
    _ellipse(img, face, (u, v), (0.18 * size, 0.085 * size), face.skin * 0.55, max(1, int(face.a * 0.02)))


def _draw_head(img: np.ndarray, face: Face, rng: np.random.Generator, defects: set[str]) -> None:
    dark_skin = face.skin * 0.7
    thick = max(1, int(face.a * 0.035))
    if rng.random() < 0.5:  # long hair behind the head
        _ellipse(img, face, (0, 0.15), (1.25, 1.05), face.hair)
    neck = face.points(np.array([[-0.45, 0.6], [0.45, 0.6], [0.5, 1.6], [-0.5, 1.6]]))
    cv2.fillConvexPoly(img, neck, _tup(dark_skin), cv2.LINE_AA)
    for side in (-1, 1):
        _ellipse(img, face, (side * 0.97, 0.0), (0.14, 0.2), face.skin * 0.9)
    _ellipse(img, face, (0, 0), (1, 1), face.skin)
    style = rng.integers(3)
    if style == 0:  # short cap of hair
        _ellipse(img, face, (0, -0.35), (1.05, 0.75), face.hair, arc=(180, 360))
    elif style == 1:  # fringe
        _ellipse(img, face, (0, -0.45), (1.02, 0.6), face.hair, arc=(170, 370))
    # style 2: bald / shaved

    iris_l = _colour(rng, IRIS, 10)
    iris_r = iris_l
    size_l = size_r = rng.uniform(0.9, 1.15)
    v_l = v_r = -0.18
    if "eyes" in defects:  # heterochromia and mismatched size, as GANs often draw them
        iris_r = np.clip(255 - iris_l + rng.normal(0, 20, 3), 0, 255)
        size_r = size_l * rng.uniform(1.35, 1.7)
    if "asymmetry" in defects:  # one eye and the mouth slide off the face's axis
        v_r += rng.choice([-1, 1]) * rng.uniform(0.1, 0.18)
    for side, iris, size, v in ((-1, iris_l, size_l, v_l), (1, iris_r, size_r, v_r)):
        _eye(img, face, side * 0.38, v, iris, size)
        brow = face.points(np.array([[side * 0.2, v - 0.17], [side * 0.55, v - 0.2]]))
        cv2.line(img, tuple(brow[0]), tuple(brow[1]), _tup(face.hair * 0.8), thick * 2, cv2.LINE_AA)
    nose = face.points(np.array([[0.0, -0.05], [0.07, 0.25], [-0.06, 0.28]]))
    cv2.polylines(img, [nose], False, _tup(dark_skin), thick, cv2.LINE_AA)
    mouth_u, mouth_tilt = 0.0, 0.0
    if "asymmetry" in defects:
        mouth_u, mouth_tilt = rng.choice([-1, 1]) * rng.uniform(0.15, 0.3), rng.uniform(-25, 25)
    lips = np.clip(face.skin * np.array([0.85, 0.45, 0.45]) + rng.normal(0, 10, 3), 0, 255)
    _ellipse(img, face, (mouth_u, 0.5), (0.3, 0.1), lips, extra_deg=mouth_tilt)
    _ellipse(img, face, (mouth_u, 0.5), (0.3, 0.02), lips * 0.5, extra_deg=mouth_tilt)


def _face_region(shape: tuple[int, int], face: Face) -> np.ndarray:
    region = np.zeros(shape, np.uint8)
    _ellipse(region, face, (0, 0), (1, 1), np.array([255, 255, 255]))
    return region[..., 0] > 0


def _draw_mask(img: np.ndarray, face: Face, rng: np.random.Generator) -> None:
    colour = _colour(rng, MASK_COLOURS, 12)
    angles = np.linspace(math.radians(5), math.radians(175), 24)
    outline = [(1.02 * math.cos(t), 1.02 * math.sin(t)) for t in angles]
    top = rng.uniform(-0.02, 0.1)
    poly = face.points(np.array([(1.02, top), *outline, (-1.02, top)]))
    style = rng.integers(3)
    if style == 1:  # N95-like cup: rounder and narrower
        poly = face.points(
            np.array([(0.85 * u, v if v > top else top) for u, v in [(1.0, top), *outline, (-1.0, top)]])
        )
    cv2.fillPoly(img, [poly], _tup(colour), cv2.LINE_AA)
    line_colour = _tup(colour * 0.75)
    thick = max(1, int(face.a * 0.025))
    if style == 0:  # surgical pleats
        for v in np.linspace(top + 0.15, 0.75, 3):
            p = face.points(np.array([[-0.85, v], [0.85, v]]))
            cv2.line(img, tuple(p[0]), tuple(p[1]), line_colour, thick, cv2.LINE_AA)
    elif style == 1:  # centre seam
        p = face.points(np.array([[0, top], [0, 1.0]]))
        cv2.line(img, tuple(p[0]), tuple(p[1]), line_colour, thick, cv2.LINE_AA)
    else:  # patterned cloth
        for u in np.linspace(-0.7, 0.7, 5):
            cv2.circle(img, face.point(u, 0.45), max(1, int(face.a * 0.05)), _tup(255 - colour), -1, cv2.LINE_AA)
    for side in (-1, 1):  # ear loops
        p = face.points(np.array([[side * 1.0, top + 0.05], [side * 0.97, -0.1]]))
        cv2.line(img, tuple(p[0]), tuple(p[1]), line_colour, thick, cv2.LINE_AA)


def _seam(img: np.ndarray, face: Face, rng: np.random.Generator) -> None:
    """A blend seam: one side of a line through the face is colour-shifted, as in a spliced face."""
    h, w = img.shape[:2]
    region = _face_region((h, w, 3), face)
    yy, xx = np.mgrid[0:h, 0:w]
    theta = rng.uniform(0, math.pi)
    offset = rng.uniform(-0.4, 0.4) * face.a
    side = (xx - face.cx) * math.cos(theta) + (yy - face.cy) * math.sin(theta) > offset
    shift = rng.choice([-1, 1], 3) * rng.uniform(25, 45, 3)
    sel = region & side
    img[sel] = np.clip(img[sel].astype(float) + shift, 0, 255).astype(np.uint8)


def _checkerboard(img: np.ndarray, face: Face, rng: np.random.Generator) -> None:
    """Up-sampling artefacts: a periodic grid over the face, coarse enough to survive down-scaling."""
    h, w = img.shape[:2]
    region = _face_region((h, w, 3), face)
    period = max(2, int(face.a / rng.uniform(3.5, 5)))  # >= 3 px after 600 -> 64 px down-scaling
    yy, xx = np.mgrid[0:h, 0:w]
    grid = (((xx // period) + (yy // period)) % 2) * 2 - 1
    amp = rng.uniform(7, 16)
    img[region] = np.clip(img[region].astype(float) + (grid[region] * amp)[:, None], 0, 255).astype(np.uint8)


def _lighting(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    theta = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
    t = math.cos(theta) * (xx - 0.5) + math.sin(theta) * (yy - 0.5)
    gain = rng.uniform(0.75, 1.15) * (1 + rng.uniform(0.2, 0.6) * t)
    tint = rng.normal(1.0, 0.05, 3)
    return np.clip(img.astype(np.float32) * gain[..., None] * tint, 0, 255).astype(np.uint8)


def draw_face(rng: np.random.Generator, height: int, width: int, kind: str) -> np.ndarray:
    """Draw one RGB face image of ``kind`` in {"real", "masked", "fake"}."""
    img = _background(rng, height, width)
    side = min(height, width)
    a = rng.uniform(0.24, 0.33) * side
    face = Face(
        cx=width * rng.uniform(0.4, 0.6),
        cy=height * rng.uniform(0.42, 0.56),
        a=a,
        b=a * rng.uniform(1.2, 1.4),
        angle=math.radians(rng.uniform(-15, 15)),
        skin=_colour(rng, SKIN, 12),
        hair=_colour(rng, HAIR, 15),
    )
    defects: set[str] = set()
    if kind == "fake":
        # Up-sampling texture is the one signature every GAN face shares (at varying strength); one more defect
        # varies per image, as real fakes do.
        defects = {"checkerboard", str(rng.choice(["eyes", "asymmetry", "seam"]))}
    _draw_head(img, face, rng, defects)
    if kind == "masked":
        _draw_mask(img, face, rng)
    if "seam" in defects:
        _seam(img, face, rng)
    if "checkerboard" in defects:
        _checkerboard(img, face, rng)
    img = _lighting(img, rng)
    sigma = rng.uniform(0, 0.012) * side
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    noise = rng.normal(0, rng.uniform(1, 6), img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def demo_plan(scale: float) -> list[tuple[str, str, str]]:
    """(relative folder, kind, size class) for every image the demo at ``scale`` draws, in a fixed order."""
    plan: list[tuple[str, str, str]] = []
    for split, per_class in REAL_COUNTS["face_mask"].items():
        n = max(2, round(per_class * scale))
        plan += [(f"face_mask/{split}/WithMask", "masked", "small")] * n
        plan += [(f"face_mask/{split}/WithoutMask", "real", "small")] * n
    for folder, count in REAL_COUNTS["real_and_fake_face"].items():
        kind = "real" if folder == "training_real" else "fake"
        plan += [(f"real_and_fake_face/{folder}", kind, "large")] * max(3, round(count * scale))
    return plan


def write_demo(root: str | Path, scale: float = 0.1, seed: int = 0, progress: bool = True) -> Path:
    """Draw the demo data set under ``root`` (deterministic in ``scale`` and ``seed``) and return ``root``.

    Built once under a lock and renamed into place at the end (``facemix.data.shared``), so jobs started together
    on one data root draw it once, and an interrupted draw never leaves a half set that later runs would mistake
    for a complete one. An existing complete set with the same parameters is kept.
    """
    root = Path(root)
    params = {"version": VERSION, "scale": scale, "seed": seed}
    stamp = root / STAMP

    def is_built() -> bool:
        if stamp.exists():
            if json.loads(stamp.read_text()) == params:
                return True
            raise FileExistsError(
                f"{root} already holds a demo data set drawn with {stamp.read_text().strip()}, not {params}. "
                "Point data.demo.root at a new folder (the default folder name carries scale and seed) or delete it."
            )
        if root.exists() and any(root.iterdir()):
            raise FileExistsError(
                f"{root} exists and is not a facemix demo folder (no {STAMP}); refusing to write into it."
            )
        return False

    def build() -> None:
        remove_leftovers(root)
        tmp = private_name(root)
        _draw(tmp, scale, seed, progress, root)
        (tmp / STAMP).write_text(json.dumps(params))
        if root.exists():
            root.rmdir()  # empty, checked above
        tmp.rename(root)

    root.parent.mkdir(parents=True, exist_ok=True)
    build_once(is_built, build, root.with_name(root.name + ".lock"), f"the demo set {root}")
    return root


def _draw(out: Path, scale: float, seed: int, progress: bool, shown_as: Path) -> None:
    """Every image of the plan, on all cores; each has its own seed, so the set does not depend on the order."""
    plan = demo_plan(scale)
    seeds = np.random.default_rng(seed).integers(0, 2**63 - 1, size=len(plan))
    counters: dict[str, int] = {}
    jobs = []
    for i, (folder, kind, size_class) in enumerate(plan):
        counters[folder] = counters.get(folder, 0) + 1
        jobs.append((out / folder / f"{counters[folder]:05d}.jpg", kind, size_class, int(seeds[i])))
    for folder in counters:
        (out / folder).mkdir(parents=True, exist_ok=True)
    description = f"Drawing demo faces into {shown_as}"
    workers = os.cpu_count() or 1
    if workers > 1 and len(jobs) > 256:
        with multiprocessing.get_context("fork").Pool(workers, _die_with_parent, (os.getpid(),)) as pool:
            for _ in track(pool.imap_unordered(_draw_one, jobs, chunksize=32), len(jobs), description, progress):
                pass
    else:
        for job in track(jobs, len(jobs), description, progress):
            _draw_one(job)


def _die_with_parent(parent: int) -> None:
    """Pool initializer: a killed job's workers must not go on writing into the temporary folder that the next job
    clears (Linux: the kernel sends SIGKILL when the parent dies; elsewhere the workers end at their next result)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _draw_one(job: tuple[Path, str, str, int]) -> None:
    path, kind, size_class, image_seed = job
    rng = np.random.default_rng(image_seed)
    if size_class == "large":
        h = w = 600
    else:
        h = int(rng.integers(120, 191))
        w = int(h * rng.uniform(0.85, 1.0))
    img = draw_face(rng, h, w, kind)
    quality = int(rng.integers(80, 96))
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
