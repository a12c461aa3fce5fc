"""Procedural street scenes: a pinhole-camera street canyon drawn with numpy.

The scenes are built to separate architectures, not to look real:

* road and sidewalk are painted from one texture field, and so are sky and the
  walls at the foot of buildings; inside a region the two members of each pair are
  locally identical, and only wide context (sidewalk lies between road and
  facade; a wall stands on the sidewalk under a building, sky is above it) tells
  them apart;
* poles are 1-3 px wide at every distance, so a network that loses resolution
  loses them;
* layout (horizon, vanishing point, road width, building heights and gaps),
  illumination and sensor noise vary from image to image.

Geometry: a ground pixel at row ``y`` lies at relative depth ``d = (y - horizon) /
(H - horizon)`` (1 at the bottom row) and at lateral position ``u`` = the column
where its line through the vanishing point meets the bottom row. An upright
object at depth ``d`` that is ``k`` camera heights tall spans ``k * d * (H -
horizon)`` rows above its foot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from archsearch.data.cityscapes import CITYSCAPES_LABEL_IDS

SCENE_CLASS_NAMES = ("road", "sidewalk", "building", "wall", "pole", "traffic sign", "vegetation",
                     "terrain", "sky", "person", "car")
"""Cityscapes classes a synthetic scene can contain; the other 8 of the 19 never occur."""

_ID = {name: CITYSCAPES_LABEL_IDS[name] for name in SCENE_CLASS_NAMES}
_FACADE_TONES = np.array([[196, 178, 148], [150, 74, 52], [122, 122, 128], [176, 150, 120],
                          [110, 96, 88], [200, 196, 186]], dtype=np.float32)
_WINDOW_TONE = np.array([48, 60, 78], dtype=np.float32)
_POLE_THICKNESS_RANGE = (1, 3)
_MIN_POLE_SPACING = 6  # px between pole columns, so two poles never merge into one thick one


@dataclass(frozen=True)
class Scene:
    """One rendered scene: uint8 RGB image [H, W, 3] and Cityscapes label ids [H, W]."""

    image: np.ndarray
    label_ids: np.ndarray


def _smooth_field(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Unit-variance-ish noise that varies over ``cell`` pixels: blotches and stains."""
    coarse = rng.standard_normal((height // cell + 2, width // cell + 2)).astype(np.float32)
    rows = (np.arange(height, dtype=np.float32) + 0.5) / cell
    columns = (np.arange(width, dtype=np.float32) + 0.5) / cell
    row0, column0 = rows.astype(np.int64), columns.astype(np.int64)
    row_weight, column_weight = (rows - row0)[:, None], (columns - column0)[None, :]
    top = coarse[row0][:, column0] * (1 - column_weight) + coarse[row0][:, column0 + 1] * column_weight
    bottom = coarse[row0 + 1][:, column0] * (1 - column_weight) + coarse[row0 + 1][:, column0 + 1] * column_weight
    return top * (1 - row_weight) + bottom * row_weight


class Material(NamedTuple):
    """How a surface looks: a base colour ([3] or a per-pixel [H, W, 3]) plus amounts of three noises.

    Noise fields belong to the canvas, so two regions painted with one material
    have the same colour distribution wherever they are.
    """

    base: np.ndarray
    grain: float
    fine: float
    blotch: float


class _Canvas:
    """Label ids and float colours painted back to front."""

    def __init__(self, rng: np.random.Generator, height: int, width: int) -> None:
        self.rng = rng
        self.height, self.width = height, width
        rows, columns = np.mgrid[0:height, 0:width]
        self.rows = rows.astype(np.float32) + 0.5
        self.columns = columns.astype(np.float32) + 0.5
        self.labels = np.zeros((height, width), dtype=np.uint8)
        self.colour = np.zeros((height, width, 3), dtype=np.float32)
        self.grain = rng.standard_normal((height, width, 1)).astype(np.float32)
        self.fine_noise = rng.standard_normal((height, width, 3)).astype(np.float32)
        self.blotches = _smooth_field(rng, height, width, cell=12)[..., None]

    def paint(self, mask: np.ndarray, label_name: str, material: Material) -> None:
        """Give ``mask`` pixels a label and their colour under ``material``."""
        pixels = np.flatnonzero(mask)
        base = material.base.reshape(-1, 3)[pixels] if material.base.ndim == 3 else material.base
        self.labels.reshape(-1)[pixels] = _ID[label_name]
        self.colour.reshape(-1, 3)[pixels] = (base + material.grain * self.grain.reshape(-1, 1)[pixels]
                                              + material.fine * self.fine_noise.reshape(-1, 3)[pixels]
                                              + material.blotch * self.blotches.reshape(-1, 1)[pixels])


@dataclass(frozen=True)
class _Street:
    """Where the horizon, the vanishing point and the lateral band edges are (bottom-row columns)."""

    horizon: float
    vanishing_x: float
    road_left: float
    road_right: float
    sidewalk_left: float
    sidewalk_right: float

    def depth(self, rows: np.ndarray, height: int) -> np.ndarray:
        return (rows - self.horizon) / (height - self.horizon)

    def column_at(self, lateral: float, depth: float) -> float:
        return self.vanishing_x + (lateral - self.vanishing_x) * depth


def _draw_street(rng: np.random.Generator, height: int, width: int) -> _Street:
    horizon = height * rng.uniform(0.36, 0.52)
    vanishing_x = width * rng.uniform(0.35, 0.65)
    road_centre = vanishing_x + width * rng.uniform(-0.15, 0.15)
    road_half_width = width * rng.uniform(0.25, 0.45)
    road_left, road_right = road_centre - road_half_width, road_centre + road_half_width
    return _Street(horizon, vanishing_x, road_left, road_right,
                   road_left - width * rng.uniform(0.15, 0.5), road_right + width * rng.uniform(0.15, 0.5))


def _paint_ground(canvas: _Canvas, street: _Street, asphalt: Material) -> None:
    height = canvas.height
    ground = canvas.rows > street.horizon + 0.5
    depth = np.maximum(street.depth(canvas.rows, height), 1e-3)
    lateral = street.vanishing_x + (canvas.columns - street.vanishing_x) / depth
    rng = canvas.rng
    grass = Material(np.array([88, 118, 58], np.float32) * rng.uniform(0.8, 1.2),
                            grain=10, fine=8, blotch=14)
    canvas.paint(ground & ((lateral < street.sidewalk_left) | (lateral > street.sidewalk_right)), "terrain", grass)
    canvas.paint(ground & (lateral >= street.sidewalk_left) & (lateral <= street.sidewalk_right), "sidewalk", asphalt)
    canvas.paint(ground & (lateral >= street.road_left) & (lateral <= street.road_right), "road", asphalt)


def _paint_facade(canvas: _Canvas, street: _Street, plane_lateral: float, left: bool,
                  wall_material: Material) -> None:
    """One side of the street: buildings in depth segments on the plane ``u = plane_lateral``."""
    rng, height = canvas.rng, canvas.height
    columns = canvas.columns[0]
    on_side = columns < street.vanishing_x if left else columns > street.vanishing_x
    foot_depth = np.where(on_side, (columns - street.vanishing_x) / (plane_lateral - street.vanishing_x), 1e-6)
    foot_depth = np.maximum(foot_depth, 1e-6)
    distance = 1.0 / foot_depth
    nearest = distance[on_side].min() if on_side.any() else 1.0
    segment_ends = nearest + np.cumsum(rng.uniform(0.3, 1.5, size=64))
    count = segment_ends.size
    has_buildings = rng.random() > 0.15
    present = (rng.random(count) < 0.85) & has_buildings
    storeys = rng.uniform(1.5, 5.0, count)
    tones = _FACADE_TONES[rng.integers(0, len(_FACADE_TONES), count)] * rng.uniform(0.85, 1.15, (count, 1))
    wall_height = np.where(rng.random(count) < 0.35, rng.uniform(0.25, 0.6, count), 0.0)
    window_rows, window_columns = rng.uniform(0.35, 0.6, count), rng.uniform(0.15, 0.35, count)

    segment = np.minimum(np.searchsorted(segment_ends, distance), count - 1)
    foot_row = street.horizon + foot_depth * (height - street.horizon)
    span = foot_row - street.horizon  # rows per camera height at this column
    rows = canvas.rows
    above_foot = (foot_row[None, :] - rows) / span[None, :]  # height above ground, camera heights
    facade = (on_side & present[segment])[None, :] & (above_foot >= 0) & (above_foot <= storeys[segment][None, :])
    window = ((above_foot / window_rows[segment]) % 1.0 > 0.45) & ((distance / window_columns[segment]) % 1.0 > 0.5)[None, :]
    window &= above_foot > 0.4
    base = np.where(window[..., None], _WINDOW_TONE, tones[segment][None, :, :])
    canvas.paint(facade, "building", Material(base, grain=6, fine=5, blotch=6))
    canvas.paint(facade & (above_foot <= wall_height[segment][None, :]), "wall", wall_material)


def _upright_box(canvas: _Canvas, street: _Street, column: float, depth: float,
                 bottom: float, top: float, half_width: float) -> np.ndarray:
    """Pixels of a box standing at ``column``, ``depth``; heights in camera heights, width in px."""
    span = depth * (canvas.height - street.horizon)
    foot = street.horizon + span
    return ((canvas.rows <= foot - bottom * span) & (canvas.rows >= foot - top * span)
            & (np.abs(canvas.columns - column) <= half_width))


def _paint_pole(canvas: _Canvas, street: _Street, column: int, depth: float) -> None:
    rng = canvas.rng
    thickness = int(rng.integers(_POLE_THICKNESS_RANGE[0], _POLE_THICKNESS_RANGE[1] + 1))
    pole_height = rng.uniform(1.8, 3.5)
    span = depth * (canvas.height - street.horizon)
    foot = street.horizon + span
    pixel_columns = canvas.columns - 0.5
    mask = ((pixel_columns >= column) & (pixel_columns < column + thickness)
            & (canvas.rows <= foot) & (canvas.rows >= foot - pole_height * span))
    metal = Material(np.full(3, rng.uniform(60, 140), np.float32), grain=6, fine=4, blotch=0)
    canvas.paint(mask, "pole", metal)
    if rng.random() < 0.6:
        half_size = max(2.0, 0.035 * canvas.width * depth)
        centre_row = foot - pole_height * span + half_size
        centre_column = column + thickness / 2
        sign = ((np.abs(canvas.rows - centre_row) <= half_size)
                & (np.abs(canvas.columns - centre_column) <= half_size))
        if rng.random() < 0.5:  # round sign
            sign &= (canvas.rows - centre_row) ** 2 + (canvas.columns - centre_column) ** 2 <= half_size ** 2
        tone = np.array([[200, 30, 30], [30, 70, 190], [230, 200, 40]], np.float32)[rng.integers(0, 3)]
        canvas.paint(sign, "traffic sign", Material(tone, grain=5, fine=5, blotch=0))


def _paint_tree(canvas: _Canvas, street: _Street, column: float, depth: float) -> None:
    rng = canvas.rng
    span = depth * (canvas.height - street.horizon)
    foot = street.horizon + span
    crown_height = rng.uniform(1.6, 3.0)
    trunk = _upright_box(canvas, street, column, depth, 0.0, crown_height, max(1.5, 0.012 * canvas.width * depth))
    radius_columns = canvas.width * rng.uniform(0.06, 0.12) * depth + 2
    radius_rows = span * rng.uniform(0.5, 0.9) + 2
    crown = (((canvas.columns - column) / radius_columns) ** 2
             + ((canvas.rows - (foot - crown_height * span)) / radius_rows) ** 2) <= 1.0
    bark = Material(np.array([92, 68, 46], np.float32), grain=8, fine=6, blotch=0)
    foliage = Material(np.array([52, 104, 44], np.float32) * rng.uniform(0.8, 1.2),
                              grain=22, fine=12, blotch=10)
    canvas.paint(trunk, "vegetation", bark)
    canvas.paint(crown, "vegetation", foliage)


def _paint_person(canvas: _Canvas, street: _Street, column: float, depth: float) -> None:
    rng = canvas.rng
    person_height = rng.uniform(1.0, 1.25)
    span = depth * (canvas.height - street.horizon)
    half_width = max(1.0, 0.14 * person_height * span)
    clothes = rng.uniform(20, 230, (2, 3)).astype(np.float32)
    legs = _upright_box(canvas, street, column, depth, 0.0, 0.5 * person_height, half_width * 0.8)
    torso = _upright_box(canvas, street, column, depth, 0.5 * person_height, 0.85 * person_height, half_width)
    head = _upright_box(canvas, street, column, depth, 0.85 * person_height, person_height, half_width * 0.6)
    canvas.paint(legs, "person", Material(clothes[0], grain=6, fine=4, blotch=0))
    canvas.paint(torso, "person", Material(clothes[1], grain=6, fine=4, blotch=0))
    canvas.paint(head, "person", Material(np.array([200, 160, 130], np.float32), grain=5, fine=4, blotch=0))


def _paint_car(canvas: _Canvas, street: _Street, column: float, depth: float) -> None:
    rng = canvas.rng
    half_width = canvas.width * rng.uniform(0.09, 0.14) * depth
    car_height = rng.uniform(0.8, 1.0)
    paint = rng.uniform(20, 235, 3).astype(np.float32)
    wheels = _upright_box(canvas, street, column, depth, 0.0, 0.15 * car_height, half_width * 0.95)
    body = _upright_box(canvas, street, column, depth, 0.12 * car_height, 0.6 * car_height, half_width)
    cabin = _upright_box(canvas, street, column, depth, 0.6 * car_height, car_height, half_width * 0.75)
    canvas.paint(wheels, "car", Material(np.full(3, 25, np.float32), grain=4, fine=3, blotch=0))
    canvas.paint(body, "car", Material(paint, grain=5, fine=4, blotch=0))
    canvas.paint(cabin, "car", Material(_WINDOW_TONE, grain=5, fine=4, blotch=0))


def _pole_columns(rng: np.random.Generator, street: _Street, width: int, count: int) -> list[tuple[int, float]]:
    """(column, depth) of poles along the kerbs, kept apart so each stays 1-3 px wide."""
    placed: list[tuple[int, float]] = []
    for _ in range(count * 4):
        if len(placed) == count:
            break
        depth = rng.uniform(0.2, 0.95)
        kerb = street.road_left - rng.uniform(0.02, 0.1) * width if rng.random() < 0.5 \
            else street.road_right + rng.uniform(0.02, 0.1) * width
        column = int(street.column_at(kerb, depth))
        if 0 <= column < width - 3 and all(abs(column - other) >= _MIN_POLE_SPACING for other, _ in placed):
            placed.append((column, depth))
    return placed


_ObjectPainter = Callable[[_Canvas, _Street, float, float], None]


def _apply_camera(canvas: _Canvas) -> np.ndarray:
    """Global gain, a lighting gradient in a random direction, and sensor noise; to uint8."""
    rng = canvas.rng
    angle = rng.uniform(0, 2 * np.pi)
    extent = max(canvas.height, canvas.width)
    gradient = ((canvas.columns - canvas.width / 2) * np.cos(angle)
                + (canvas.rows - canvas.height / 2) * np.sin(angle)) / extent
    light = rng.uniform(0.65, 1.3) * (1 + rng.uniform(0, 0.35) * gradient)
    tint = rng.uniform(0.92, 1.08, 3).astype(np.float32)
    noisy = canvas.colour * light[..., None] * tint + rng.uniform(2, 9) * rng.standard_normal(canvas.colour.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def render_scene(rng: np.random.Generator, height: int, width: int) -> Scene:
    """Draw one street scene; the same generator state always gives the same scene."""
    canvas = _Canvas(rng, height, width)
    street = _draw_street(rng, height, width)
    sky_tone = np.array([rng.uniform(120, 190), rng.uniform(160, 215), rng.uniform(205, 250)], np.float32)
    sky = Material(sky_tone, grain=3, fine=3, blotch=7)  # sky and walls share it
    asphalt = Material(np.full(3, rng.uniform(70, 140), np.float32) * rng.uniform(0.95, 1.05, 3),
                              grain=12, fine=5, blotch=10)  # road and sidewalk share it
    canvas.paint(np.ones((height, width), dtype=bool), "sky", sky)
    _paint_ground(canvas, street, asphalt)
    _paint_facade(canvas, street, street.sidewalk_left, left=True, wall_material=sky)
    _paint_facade(canvas, street, street.sidewalk_right, left=False, wall_material=sky)

    objects: list[tuple[float, _ObjectPainter, float]] = []
    for column, depth in _pole_columns(rng, street, width, int(rng.integers(1, 6))):
        objects.append((depth, _paint_pole, column))
    for _ in range(int(rng.integers(0, 4))):
        depth = rng.uniform(0.15, 0.9)
        lateral = street.sidewalk_left + rng.uniform(0, 0.4) * (street.road_left - street.sidewalk_left) \
            if rng.random() < 0.5 else street.sidewalk_right - rng.uniform(0, 0.4) * (street.sidewalk_right - street.road_right)
        objects.append((depth, _paint_tree, street.column_at(lateral, depth)))
    for _ in range(int(rng.integers(0, 5))):
        depth = rng.uniform(0.15, 1.0)
        lateral = rng.uniform(street.sidewalk_left, street.road_left) if rng.random() < 0.5 \
            else rng.uniform(street.road_right, street.sidewalk_right)
        objects.append((depth, _paint_person, street.column_at(lateral, depth)))
    for _ in range(int(rng.integers(0, 5))):
        depth = rng.uniform(0.2, 1.0)
        lateral = rng.uniform(street.road_left, street.road_right)
        objects.append((depth, _paint_car, street.column_at(lateral, depth)))
    for depth, paint, column in sorted(objects, key=lambda item: item[0]):
        paint(canvas, street, column, depth)
    return Scene(image=_apply_camera(canvas), label_ids=canvas.labels)
