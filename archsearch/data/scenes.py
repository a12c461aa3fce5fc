"""Procedural street scenes: a pinhole-camera street canyon drawn with numpy.

The scenes are built to separate architectures, not to look real:

* road and sidewalk are painted with one material, and so are sky and the walls
  at the foot of buildings; inside a region the two members of each pair are
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

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from archsearch.data.classes import CITYSCAPES_LABEL_IDS

SCENE_CLASS_NAMES = ("road", "sidewalk", "building", "wall", "pole", "traffic sign", "vegetation",
                     "terrain", "sky", "person", "car")
"""Cityscapes classes a synthetic scene can contain; the other 8 of the 19 never occur."""

_ID = {name: CITYSCAPES_LABEL_IDS[name] for name in SCENE_CLASS_NAMES}
_FACADE_TONES = np.array([[196, 178, 148], [150, 74, 52], [122, 122, 128], [176, 150, 120],
                          [110, 96, 88], [200, 196, 186]], dtype=np.float32)
_WINDOW_TONE = np.array([48, 60, 78], dtype=np.float32)
_POLE_THICKNESS_RANGE = (1, 3)
_MIN_POLE_SPACING = 6  # px between pole columns, so two poles never merge into one thick one
_SEGMENTS_PER_SIDE = 64  # buildings and gaps along each side; enough to reach the vanishing point

_Window = tuple[slice, slice]


@dataclass(frozen=True)
class Scene:
    """One rendered scene: uint8 RGB image [H, W, 3] and Cityscapes label ids [H, W]."""

    image: np.ndarray
    label_ids: np.ndarray


class _Material(NamedTuple):
    """How a surface looks: a base RGB colour plus amounts of the canvas's two noise fields.

    The noise fields belong to the canvas, so two regions painted with one material
    have the same colour distribution wherever they are.
    """

    base: tuple[float, float, float]
    grain: float
    blotch: float


def _smooth_field(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Roughly unit-variance noise that varies over ``cell`` pixels: blotches and stains."""
    coarse = rng.standard_normal((height // cell + 2, width // cell + 2), dtype=np.float32)
    rows = (np.arange(height, dtype=np.float32) + 0.5) / cell
    columns = (np.arange(width, dtype=np.float32) + 0.5) / cell
    row0, column0 = rows.astype(np.int64), columns.astype(np.int64)
    row_weight, column_weight = (rows - row0)[:, None], (columns - column0)[None, :]
    top = coarse[row0][:, column0] * (1 - column_weight) + coarse[row0][:, column0 + 1] * column_weight
    bottom = coarse[row0 + 1][:, column0] * (1 - column_weight) + coarse[row0 + 1][:, column0 + 1] * column_weight
    return top * (1 - row_weight) + bottom * row_weight


class _Canvas:
    """A label-id map and a material-id map, painted back to front; colours are made once at the end."""

    def __init__(self, rng: np.random.Generator, height: int, width: int) -> None:
        self.rng = rng
        self.height, self.width = height, width
        self.labels = np.zeros((height, width), dtype=np.uint8)
        self.material_ids = np.zeros((height, width), dtype=np.uint16)
        self._materials: list[_Material] = []

    def material(self, base: np.ndarray, *, grain: float, blotch: float) -> int:
        """Register a material; returns the id to paint with."""
        self._materials.append(_Material(tuple(float(value) for value in base), grain, blotch))
        return len(self._materials) - 1

    def window(self, top: float, bottom: float, left: float, right: float) -> _Window:
        """The pixel rows and columns that touch a box, clipped to the image (possibly empty)."""
        row_start, row_stop = max(0, int(np.floor(top))), min(self.height, int(np.ceil(bottom)) + 1)
        column_start, column_stop = max(0, int(np.floor(left))), min(self.width, int(np.ceil(right)) + 1)
        return slice(row_start, max(row_start, row_stop)), slice(column_start, max(column_start, column_stop))

    def coordinates(self, window: _Window = (slice(None), slice(None))) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre rows [h, 1] and columns [1, w] of a window, for broadcasting."""
        rows = np.arange(self.height, dtype=np.float32)[window[0]] + 0.5
        columns = np.arange(self.width, dtype=np.float32)[window[1]] + 0.5
        return rows[:, None], columns[None, :]

    def paint(self, mask: np.ndarray, label_name: str, material: int | np.ndarray,
              window: _Window = (slice(None), slice(None))) -> None:
        """Give the ``mask`` pixels of ``window`` a label and a material (one id or a per-pixel id map)."""
        self.labels[window][mask] = _ID[label_name]
        self.material_ids[window][mask] = material[mask] if isinstance(material, np.ndarray) else material

    def colours(self) -> np.ndarray:
        """Float RGB of every pixel from its material and the noise fields."""
        table = np.array([(*material.base, material.grain, material.blotch) for material in self._materials],
                         dtype=np.float32)
        colour = table[:, :3][self.material_ids]
        grain = self.rng.standard_normal((self.height, self.width), dtype=np.float32)
        blotches = _smooth_field(self.rng, self.height, self.width, cell=12)
        colour += (table[:, 3][self.material_ids] * grain + table[:, 4][self.material_ids] * blotches)[..., None]
        return colour


@dataclass(frozen=True)
class _Street:
    """The horizon row, the vanishing column and the lateral band edges (as bottom-row columns)."""

    horizon: float
    vanishing_x: float
    road_left: float
    road_right: float
    sidewalk_left: float
    sidewalk_right: float

    def column_at(self, lateral: float, depth: float) -> float:
        return self.vanishing_x + (lateral - self.vanishing_x) * depth

    def foot_and_span(self, depth: float, height: int) -> tuple[float, float]:
        """Row of a ground point at ``depth`` and rows per camera height there."""
        span = depth * (height - self.horizon)
        return self.horizon + span, span


def _draw_street(rng: np.random.Generator, height: int, width: int) -> _Street:
    horizon = height * rng.uniform(0.36, 0.52)
    vanishing_x = width * rng.uniform(0.35, 0.65)
    road_centre = vanishing_x + width * rng.uniform(-0.15, 0.15)
    road_half_width = width * rng.uniform(0.25, 0.45)
    road_left, road_right = road_centre - road_half_width, road_centre + road_half_width
    return _Street(horizon, vanishing_x, road_left, road_right,
                   road_left - width * rng.uniform(0.15, 0.5), road_right + width * rng.uniform(0.15, 0.5))


def _paint_ground(canvas: _Canvas, street: _Street, asphalt: int) -> None:
    """Road in the middle, a sidewalk either side, grass beyond (seen only where no building stands)."""
    window = (slice(int(street.horizon + 0.5), canvas.height), slice(None))
    rows, columns = canvas.coordinates(window)
    depth = np.maximum((rows - street.horizon) / (canvas.height - street.horizon), 1e-3)
    lateral = street.vanishing_x + (columns - street.vanishing_x) / depth
    grass = canvas.material(np.array([88, 118, 58]) * canvas.rng.uniform(0.8, 1.2), grain=10, blotch=14)
    on_sidewalk = (lateral >= street.sidewalk_left) & (lateral <= street.sidewalk_right)
    canvas.paint(~on_sidewalk, "terrain", grass, window)
    canvas.paint(on_sidewalk, "sidewalk", asphalt, window)
    canvas.paint((lateral >= street.road_left) & (lateral <= street.road_right), "road", asphalt, window)


def _paint_facade(canvas: _Canvas, street: _Street, plane_lateral: float, left: bool, wall: int) -> None:
    """One side of the street: buildings in depth segments on the vertical plane ``u = plane_lateral``."""
    rng, height = canvas.rng, canvas.height
    rows, columns = canvas.coordinates()
    columns = columns[0]
    on_side = columns < street.vanishing_x if left else columns > street.vanishing_x
    foot_depth = np.maximum(np.where(on_side, (columns - street.vanishing_x) / (plane_lateral - street.vanishing_x),
                                     0.0), 1e-6)
    distance = 1.0 / foot_depth
    nearest = distance[on_side].min() if on_side.any() else 1.0
    segment_ends = nearest + np.cumsum(rng.uniform(0.3, 1.5, size=_SEGMENTS_PER_SIDE))
    count = segment_ends.size
    present = (rng.random(count) < 0.85) & (rng.random() > 0.15)  # some sides have no buildings at all
    storeys = rng.uniform(1.5, 5.0, count)
    tones = _FACADE_TONES[rng.integers(0, len(_FACADE_TONES), count)] * rng.uniform(0.85, 1.15, (count, 1))
    tone_ids = np.array([canvas.material(tone, grain=6, blotch=6) for tone in tones], dtype=np.uint16)
    glass_id = canvas.material(_WINDOW_TONE, grain=6, blotch=6)
    wall_height = np.where(rng.random(count) < 0.35, rng.uniform(0.25, 0.6, count), 0.0)
    window_rows, window_columns = rng.uniform(0.35, 0.6, count), rng.uniform(0.15, 0.35, count)

    segment = np.minimum(np.searchsorted(segment_ends, distance), count - 1)
    foot_row = street.horizon + foot_depth * (height - street.horizon)
    above_foot = (foot_row - rows) / (foot_row - street.horizon)  # height above the ground, in camera heights
    facade = (on_side & present[segment]) & (above_foot >= 0) & (above_foot <= storeys[segment])
    glazed = (((above_foot / window_rows[segment]) % 1.0 > 0.45) & (above_foot > 0.4)
              & ((distance / window_columns[segment]) % 1.0 > 0.5))
    canvas.paint(facade, "building", np.where(glazed, np.uint16(glass_id), tone_ids[segment]))
    canvas.paint(facade & (above_foot <= wall_height[segment]), "wall", wall)


def _upright_box(rows: np.ndarray, columns: np.ndarray, foot: float, span: float, column: float,
                 bottom: float, top: float, half_width: float) -> np.ndarray:
    """Pixels of a box standing at ``column``; ``bottom``/``top`` in camera heights, width in px."""
    return ((rows <= foot - bottom * span) & (rows >= foot - top * span) & (np.abs(columns - column) <= half_width))


def _paint_pole(canvas: _Canvas, street: _Street, column: float, depth: float) -> None:
    """A 1-3 px wide pole (at any distance), sometimes carrying a sign."""
    rng = canvas.rng
    thickness = int(rng.integers(_POLE_THICKNESS_RANGE[0], _POLE_THICKNESS_RANGE[1] + 1))
    pole_height = rng.uniform(1.8, 3.5)
    foot, span = street.foot_and_span(depth, canvas.height)
    top = foot - pole_height * span
    first_column = int(column)
    window = canvas.window(top, foot, first_column, first_column + thickness - 1)
    rows, _ = canvas.coordinates(window)
    pole = np.broadcast_to((rows <= foot) & (rows >= top), (rows.shape[0], window[1].stop - window[1].start))
    metal = canvas.material(np.full(3, rng.uniform(60, 140)), grain=6, blotch=0)
    canvas.paint(pole, "pole", metal, window)
    if rng.random() < 0.6:
        half_size = max(2.0, 0.035 * canvas.width * depth)
        centre_row, centre_column = top + half_size, first_column + thickness / 2
        window = canvas.window(centre_row - half_size, centre_row + half_size,
                               centre_column - half_size, centre_column + half_size)
        rows, columns = canvas.coordinates(window)
        sign = (np.abs(rows - centre_row) <= half_size) & (np.abs(columns - centre_column) <= half_size)
        if rng.random() < 0.5:  # round sign
            sign &= (rows - centre_row) ** 2 + (columns - centre_column) ** 2 <= half_size ** 2
        tone = np.array([[200, 30, 30], [30, 70, 190], [230, 200, 40]])[rng.integers(0, 3)]
        canvas.paint(sign, "traffic sign", canvas.material(tone, grain=5, blotch=0), window)


def _paint_tree(canvas: _Canvas, street: _Street, column: float, depth: float) -> None:
    """A trunk at least 3 px wide under an elliptic crown of strongly textured foliage."""
    rng = canvas.rng
    foot, span = street.foot_and_span(depth, canvas.height)
    crown_height = rng.uniform(1.6, 3.0)
    trunk_half_width = max(1.5, 0.012 * canvas.width * depth)
    radius_columns = canvas.width * rng.uniform(0.06, 0.12) * depth + 2
    radius_rows = span * rng.uniform(0.5, 0.9) + 2
    crown_row = foot - crown_height * span
    window = canvas.window(crown_row - radius_rows, foot, column - radius_columns, column + radius_columns)
    rows, columns = canvas.coordinates(window)
    trunk = _upright_box(rows, columns, foot, span, column, 0.0, crown_height, trunk_half_width)
    crown = ((columns - column) / radius_columns) ** 2 + ((rows - crown_row) / radius_rows) ** 2 <= 1.0
    bark = canvas.material(np.array([92, 68, 46]), grain=8, blotch=0)
    foliage = canvas.material(np.array([52, 104, 44]) * rng.uniform(0.8, 1.2), grain=22, blotch=10)
    canvas.paint(trunk, "vegetation", bark, window)
    canvas.paint(crown, "vegetation", foliage, window)


def _paint_person(canvas: _Canvas, street: _Street, column: float, depth: float) -> None:
    """Legs, torso and head boxes, about 1.1 camera heights tall."""
    rng = canvas.rng
    person_height = rng.uniform(1.0, 1.25)
    foot, span = street.foot_and_span(depth, canvas.height)
    half_width = max(1.0, 0.14 * person_height * span)
    window = canvas.window(foot - person_height * span, foot, column - half_width, column + half_width)
    rows, columns = canvas.coordinates(window)
    parts = ((0.0, 0.5, 0.8, rng.uniform(20, 230, 3)), (0.5, 0.85, 1.0, rng.uniform(20, 230, 3)),
             (0.85, 1.0, 0.6, np.array([200, 160, 130])))
    for bottom, top, width_share, tone in parts:
        box = _upright_box(rows, columns, foot, span, column, bottom * person_height, top * person_height,
                           half_width * width_share)
        canvas.paint(box, "person", canvas.material(tone, grain=6, blotch=0), window)


def _paint_car(canvas: _Canvas, street: _Street, column: float, depth: float) -> None:
    """Dark wheels, a painted body and a glass cabin, about one camera height tall."""
    rng = canvas.rng
    half_width = canvas.width * rng.uniform(0.09, 0.14) * depth
    car_height = rng.uniform(0.8, 1.0)
    foot, span = street.foot_and_span(depth, canvas.height)
    window = canvas.window(foot - car_height * span, foot, column - half_width, column + half_width)
    rows, columns = canvas.coordinates(window)
    parts = ((0.0, 0.15, 0.95, np.full(3, 25)), (0.12, 0.6, 1.0, rng.uniform(20, 235, 3)),
             (0.6, 1.0, 0.75, _WINDOW_TONE))
    for bottom, top, width_share, tone in parts:
        box = _upright_box(rows, columns, foot, span, column, bottom * car_height, top * car_height,
                           half_width * width_share)
        canvas.paint(box, "car", canvas.material(tone, grain=5, blotch=0), window)


def _pole_places(rng: np.random.Generator, street: _Street, width: int, count: int) -> list[tuple[float, float]]:
    """(column, depth) of poles along the kerbs, kept apart so that each stays 1-3 px wide."""
    placed: list[tuple[float, float]] = []
    for _ in range(count * 4):
        if len(placed) == count:
            break
        depth = rng.uniform(0.2, 0.95)
        kerb = (street.road_left - rng.uniform(0.02, 0.1) * width if rng.random() < 0.5
                else street.road_right + rng.uniform(0.02, 0.1) * width)
        column = float(math.floor(street.column_at(kerb, depth)))
        if 0 <= column < width - 3 and all(abs(column - other) >= _MIN_POLE_SPACING for other, _ in placed):
            placed.append((column, depth))
    return placed


def _sidewalk_lateral(rng: np.random.Generator, street: _Street, outer_share: float) -> float:
    """A lateral position on a random sidewalk, within ``outer_share`` of its width from the facade."""
    if rng.random() < 0.5:
        return street.sidewalk_left + rng.uniform(0, outer_share) * (street.road_left - street.sidewalk_left)
    return street.sidewalk_right - rng.uniform(0, outer_share) * (street.sidewalk_right - street.road_right)


_ObjectPainter = Callable[[_Canvas, _Street, float, float], None]


def _place_objects(rng: np.random.Generator, street: _Street, width: int) -> list[tuple[float, _ObjectPainter, float]]:
    """(depth, painter, column) of every pole, tree, person and car, farthest first."""
    objects: list[tuple[float, _ObjectPainter, float]] = [
        (depth, _paint_pole, column)
        for column, depth in _pole_places(rng, street, width, int(rng.integers(1, 6)))]
    for _ in range(int(rng.integers(0, 4))):
        depth = rng.uniform(0.15, 0.9)
        objects.append((depth, _paint_tree, street.column_at(_sidewalk_lateral(rng, street, 0.4), depth)))
    for _ in range(int(rng.integers(0, 5))):
        depth = rng.uniform(0.15, 1.0)
        objects.append((depth, _paint_person, street.column_at(_sidewalk_lateral(rng, street, 1.0), depth)))
    for _ in range(int(rng.integers(0, 5))):
        depth = rng.uniform(0.2, 1.0)
        objects.append((depth, _paint_car, street.column_at(rng.uniform(street.road_left, street.road_right), depth)))
    return sorted(objects, key=lambda item: item[0])


def _camera(rng: np.random.Generator, colour: np.ndarray) -> np.ndarray:
    """Global gain, colour tint, a lighting gradient in a random direction and sensor noise; to uint8.

    Works in place on ``colour``.
    """
    height, width = colour.shape[:2]
    rows = np.arange(height, dtype=np.float32)[:, None] - height / 2
    columns = np.arange(width, dtype=np.float32)[None, :] - width / 2
    angle = rng.uniform(0, 2 * np.pi)
    gradient = (columns * np.cos(angle) + rows * np.sin(angle)) / max(height, width)
    light = np.float32(rng.uniform(0.7, 1.25)) * (1 + np.float32(rng.uniform(0, 0.25)) * gradient)
    colour *= light[..., None]
    colour *= rng.uniform(0.92, 1.08, 3).astype(np.float32)
    noise = rng.standard_normal(colour.shape, dtype=np.float32)
    noise *= np.float32(rng.uniform(2, 9))
    colour += noise
    return np.clip(np.rint(colour, out=colour), 0, 255, out=colour).astype(np.uint8)


def render_scene(rng: np.random.Generator, height: int, width: int) -> Scene:
    """Draw one street scene; the same generator state always gives the same scene."""
    canvas = _Canvas(rng, height, width)
    street = _draw_street(rng, height, width)
    sky_tone = np.array([rng.uniform(110, 175), rng.uniform(150, 195), rng.uniform(180, 215)])
    sky = canvas.material(sky_tone, grain=3, blotch=7)  # also the walls' material
    asphalt = canvas.material(np.full(3, rng.uniform(70, 140)) * rng.uniform(0.95, 1.05, 3),
                              grain=12, blotch=10)  # road and sidewalk alike
    canvas.paint(np.ones((height, width), dtype=bool), "sky", sky)
    _paint_ground(canvas, street, asphalt)
    _paint_facade(canvas, street, street.sidewalk_left, left=True, wall=sky)
    _paint_facade(canvas, street, street.sidewalk_right, left=False, wall=sky)
    for depth, paint, column in _place_objects(rng, street, width):
        paint(canvas, street, column, depth)
    return Scene(image=_camera(rng, canvas.colours()), label_ids=canvas.labels)
