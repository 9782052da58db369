"""Templated reasoning-segmentation queries that each pick exactly one object of an aerial scene.

GRES (LISAt, ch. 6) keeps an object only if a query can single it out, and half of its queries
name a position. Here a query is a ``QuerySpec`` — category, optionally colour, size word
(small / large / largest / smallest), absolute region (3x3 cell or quadrant) and a relation to
another uniquely described object (left of / right of / above / below / next to / nearest to) —
and its meaning is a predicate over all instances (``evaluate_query``). A spec is kept only if it
selects its target alone under the exact thresholds *and* under a strict and a lenient reading
of every threshold (regions, size cuts, distances, superlative and nearest margins), so that a
person looking at the image would not hesitate either: "the small red vehicle left of the
largest building", "the tree nearest to the pond", "the building in the top-right corner".

Conventions (shared with aerial.py): centroids are mean pixel indices, boxes have exclusive
x1, y1, and the distance between two objects is the least Euclidean distance between their pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal

import cv2
import numpy as np

from edgeperc.synth.aerial import SMALL_AREA_PX, AerialScene

SizeWord = Literal["small", "large", "largest", "smallest"]
Relation = Literal["left_of", "right_of", "above", "below", "next_to", "nearest_to"]

NOUNS = {"building": "building", "vehicle": "vehicle", "tree": "tree", "water": "pond"}
# "small" = area below the first cut, "large" = at or above the second, per category (px²);
# the building cut is LISAt's Small/Large threshold.
SIZE_CUTS_PX = {"vehicle": (110.0, 160.0), "building": (float(SMALL_AREA_PX), 1500.0), "tree": (120.0, 300.0),
                "water": (4000.0, 8000.0)}
# Regions by centroid, as fractions (x0, x1, y0, y1) of the image: a 3x3 grid and the GRES quadrants.
_T = 1 / 3
REGIONS: dict[str, tuple[float, float, float, float]] = {
    "top-left": (0, _T, 0, _T), "top-center": (_T, 2 * _T, 0, _T), "top-right": (2 * _T, 1, 0, _T),
    "center-left": (0, _T, _T, 2 * _T), "center": (_T, 2 * _T, _T, 2 * _T), "center-right": (2 * _T, 1, _T, 2 * _T),
    "bottom-left": (0, _T, 2 * _T, 1), "bottom-center": (_T, 2 * _T, 2 * _T, 1), "bottom-right": (2 * _T, 1, 2 * _T, 1),
    "top-left quadrant": (0, 0.5, 0, 0.5), "top-right quadrant": (0.5, 1, 0, 0.5),
    "bottom-left quadrant": (0, 0.5, 0.5, 1), "bottom-right quadrant": (0.5, 1, 0.5, 1),
}
REGION_PHRASES = {
    "top-left": "in the top-left corner", "top-center": "at the top center", "top-right": "in the top-right corner",
    "center-left": "on the left side, halfway down", "center": "in the center of the image",
    "center-right": "on the right side, halfway down", "bottom-left": "in the bottom-left corner",
    "bottom-center": "at the bottom center", "bottom-right": "in the bottom-right corner",
    **{name: f"in the {name}" for name in REGIONS if name.endswith("quadrant")},
}
RELATION_WORDS = {"left_of": "left of", "right_of": "right of", "above": "above", "below": "below",
                  "next_to": "next to", "nearest_to": "nearest to"}
NEXT_TO_PX = 10.0  # "next to": at most this many px between the two objects
# Margins of the strict / lenient readings (slack -1 / +1); slack 0 is the exact meaning.
REGION_MARGIN = 0.04  # of the image side
SIDE_MARGIN_PX = 4.0  # left of / right of / above / below, between boxes
SIZE_MARGIN = 0.2  # relative, on the size cuts
NEXT_TO_MARGIN = 0.5  # relative, on NEXT_TO_PX
SUPERLATIVE_RATIO = 1.25  # the largest must be this much larger than the runner-up
NEAREST_RATIO, NEAREST_PX = 1.5, 3.0  # the nearest must be this much nearer than the runner-up
# GRES's test split is about two thirds Small (Table D.1: 1,023 of 1,500)
SMALL_TARGET_FRACTION = 2 / 3
TEMPLATES = ("Segment {}.", "Find {}.", "Locate {}.", "Identify {}.", "Show {}.", "Highlight {}.", "Where is {}?",
             "Can you segment {}?")


@dataclass(frozen=True)
class QuerySpec:
    """What a query says. ``reference`` describes the other object of ``relation`` (itself a
    spec without a relation). At most one selector: a superlative size word or "nearest to"."""

    category: str
    colour: str | None = None
    size: SizeWord | None = None
    region: str | None = None
    relation: Relation | None = None
    reference: QuerySpec | None = None

    def __post_init__(self) -> None:
        if self.category not in NOUNS:
            raise ValueError(f"category '{self.category}' must be one of {', '.join(NOUNS)}")
        if self.region is not None and self.region not in REGIONS:
            raise ValueError(f"region '{self.region}' must be one of {', '.join(REGIONS)}")
        if (self.relation is None) != (self.reference is None):
            raise ValueError("relation and reference come together")
        if self.reference is not None and self.reference.relation is not None:
            raise ValueError("a reference is described without a relation of its own")
        if self.size in ("largest", "smallest") and self.relation == "nearest_to":
            raise ValueError("one selector per query: a superlative or 'nearest to', not both")

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class SceneGeometry:
    """Per-instance arrays of a scene, index i = instance id i + 1, and mask-to-mask distances."""

    category: np.ndarray  # (N,) str
    colour: np.ndarray  # (N,) str
    area: np.ndarray  # (N,) float64 px²
    centroid: np.ndarray  # (N, 2) float64 x, y
    bbox: np.ndarray  # (N, 4) int64 x0, y0, x1, y1 (exclusive)
    hw: tuple[int, int]
    instance_map: np.ndarray  # (H, W) uint16
    _order: np.ndarray | None = None
    _starts: np.ndarray | None = None
    _gaps: dict | None = None

    @property
    def count(self) -> int:
        return len(self.area)

    def gaps_to(self, index: int, reach_px: float | None = None) -> np.ndarray:
        """(N,) float64 least pixel-to-pixel distance from every instance to instance ``index`` (0 for
        itself). With ``reach_px`` only distances up to it are exact and farther ones are inf: the
        distance transform then runs on the reference's box grown by that much, not on the image."""
        if self._gaps is None:
            self._gaps = {}
        if index in self._gaps:
            gaps = self._gaps[index]
            return gaps if reach_px is None else np.where(gaps <= reach_px, gaps, np.inf)
        if reach_px is not None:
            grow = int(np.ceil(reach_px)) + 1
            x0, y0, x1, y1 = self.bbox[index]
            y0, x0 = max(y0 - grow, 0), max(x0 - grow, 0)
            y1, x1 = min(y1 + grow, self.hw[0]), min(x1 + grow, self.hw[1])
            ids = self.instance_map[y0:y1, x0:x1]
            distance = cv2.distanceTransform((ids != index + 1).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            gaps = np.full(self.count + 1, np.inf)
            np.minimum.at(gaps, ids.ravel(), distance.ravel().astype(np.float64))
            gaps = gaps[1:]
            gaps[gaps > reach_px] = np.inf
            return gaps
        if self._order is None:  # pixels grouped by instance once, so each min is one reduceat
            flat = self.instance_map.ravel()
            self._order = np.argsort(flat, kind="stable")
            self._starts = np.searchsorted(flat[self._order], np.arange(1, self.count + 1))
        outside = (self.instance_map != index + 1).astype(np.uint8)
        distance = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE).ravel()
        self._gaps[index] = np.minimum.reduceat(distance[self._order], self._starts).astype(np.float64)
        return self._gaps[index]

    def box_gaps_to(self, index: int) -> np.ndarray:
        """(N,) float64 distance between boxes: a cheap lower bound of ``gaps_to``."""
        b, r = self.bbox, self.bbox[index]
        dx = np.maximum(np.maximum(b[:, 0] - r[2], r[0] - b[:, 2]) + 1, 0)
        dy = np.maximum(np.maximum(b[:, 1] - r[3], r[1] - b[:, 3]) + 1, 0)
        return np.hypot(dx, dy).astype(np.float64)


def scene_geometry(scene: AerialScene) -> SceneGeometry:
    """Arrays of the scene's objects for vectorised predicates."""
    objects = scene.objects
    return SceneGeometry(
        np.array([o.category for o in objects]), np.array([o.colour for o in objects]),
        np.array([o.area_px for o in objects], np.float64), np.array([o.centroid_xy for o in objects], np.float64).reshape(-1, 2),
        np.array([o.bbox_xyxy for o in objects], np.int64).reshape(-1, 4), tuple(scene.instance_map.shape), scene.instance_map)


def region_mask(geometry: SceneGeometry, region: str, slack: float = 0.0) -> np.ndarray:
    """(N,) bool: centroid inside the region, grown (slack > 0) or shrunk (< 0) by REGION_MARGIN."""
    x0, x1, y0, y1 = REGIONS[region]
    height, width = geometry.hw
    m = slack * REGION_MARGIN
    x, y = geometry.centroid[:, 0] / width, geometry.centroid[:, 1] / height
    return (x >= x0 - m) & (x < x1 + m) & (y >= y0 - m) & (y < y1 + m)


def relation_mask(geometry: SceneGeometry, relation: Relation, ref: int, slack: float = 0.0) -> np.ndarray:
    """(N,) bool for the filtering relations (not "nearest_to"); the reference never relates to itself."""
    b, r = geometry.bbox, geometry.bbox[ref]
    m = slack * SIDE_MARGIN_PX
    if relation == "left_of":
        keep = b[:, 2] <= r[0] + m
    elif relation == "right_of":
        keep = b[:, 0] >= r[2] - m
    elif relation == "above":
        keep = b[:, 3] <= r[1] + m
    elif relation == "below":
        keep = b[:, 1] >= r[3] - m
    elif relation == "next_to":
        reach = NEXT_TO_PX * (1 + slack * NEXT_TO_MARGIN)
        keep = geometry.gaps_to(ref, reach) <= reach
    else:
        raise ValueError(f"'{relation}' is not a filtering relation")
    keep = keep.copy()
    keep[ref] = False
    return keep


def evaluate_query(spec: QuerySpec, geometry: SceneGeometry, slack: float = 0.0) -> np.ndarray:
    """(N,) bool: the instances the spec selects. ``slack`` in [-1, 1] reads every threshold
    strictly (-1), exactly (0) or leniently (+1); a reference that does not resolve to exactly
    one instance under the same reading selects nothing.

    Order: category, colour, region, relation filter, small/large, then one selector (largest /
    smallest / nearest to) among what is left; exact ties stay tied.
    """
    keep = geometry.category == spec.category
    if spec.colour is not None:
        keep &= geometry.colour == spec.colour
    if spec.region is not None:
        keep &= region_mask(geometry, spec.region, slack)
    ref = None
    if spec.reference is not None:
        refs = np.flatnonzero(evaluate_query(spec.reference, geometry, slack))
        if len(refs) != 1:
            return np.zeros(geometry.count, bool)
        ref = int(refs[0])
        if spec.relation != "nearest_to":
            keep &= relation_mask(geometry, spec.relation, ref, slack)
        else:
            keep[ref] = False
    small_cut, large_cut = SIZE_CUTS_PX[spec.category]
    if spec.size == "small":
        keep &= geometry.area < small_cut * (1 + slack * SIZE_MARGIN)
    elif spec.size == "large":
        keep &= geometry.area >= large_cut * (1 - slack * SIZE_MARGIN)
    if not keep.any():
        return keep
    if spec.size in ("largest", "smallest"):
        area = np.where(keep, geometry.area if spec.size == "largest" else 1 / geometry.area, -np.inf)
        best = area.max()
        keep &= area >= (best / SUPERLATIVE_RATIO if slack > 0 else best)
    elif spec.relation == "nearest_to":
        gaps = np.where(keep, geometry.gaps_to(ref), np.inf)
        best = gaps.min()
        keep &= gaps <= (best * NEAREST_RATIO + NEAREST_PX if slack > 0 else best)
    return keep


def singles_out(spec: QuerySpec, geometry: SceneGeometry, target: int) -> bool:
    """True when the strict, exact and lenient readings all select ``target`` and nothing else."""
    for slack in (-1.0, 0.0, 1.0):
        chosen = evaluate_query(spec, geometry, slack)
        if not chosen[target] or chosen.sum() != 1:
            return False
    return True


def has_rivals(spec: QuerySpec, geometry: SceneGeometry) -> bool:
    """A superlative or "nearest to" must choose among two or more: "the largest red building"
    is odd when there is one red building (it would still be unique, but misleading)."""
    if spec.size in ("largest", "smallest"):
        return int(evaluate_query(replace(spec, size=None), geometry).sum()) >= 2
    if spec.relation == "nearest_to":
        chosen = evaluate_query(replace(spec, relation=None, reference=None), geometry)
        chosen[np.flatnonzero(evaluate_query(spec.reference, geometry))] = False
        return int(chosen.sum()) >= 2
    return True


def describe(spec: QuerySpec) -> str:
    """'the small red vehicle in the top-left corner left of the largest building'."""
    words = ["the"] + [w for w in (spec.size, spec.colour) if w] + [NOUNS[spec.category]]
    if spec.region:
        words.append(REGION_PHRASES[spec.region])
    if spec.relation:
        words += [RELATION_WORDS[spec.relation], describe(spec.reference)]
    return " ".join(words)


def answer_text(geometry: SceneGeometry, target: int) -> str:
    """LISA-style answer whose [SEG] token the mask decoder turns into the mask."""
    return f"It is the {geometry.colour[target]} {NOUNS[str(geometry.category[target])]}. [SEG]"


@dataclass(frozen=True)
class AerialQuery:
    """One query: text, the target instance (id in the scene's instance map) and its mask."""

    text: str  # "Segment the small red vehicle left of the largest building."
    phrase: str  # "the small red vehicle left of the largest building"
    answer: str  # "It is the red vehicle. [SEG]"
    target_id: int
    reference_id: int | None
    spec: QuerySpec
    mask: np.ndarray  # (H, W) bool

    @property
    def area_px(self) -> int:
        return int(self.mask.sum())

    @property
    def is_small(self) -> bool:
        return self.area_px < SMALL_AREA_PX


def _reference_spec(rng: np.random.Generator, geometry: SceneGeometry, ref: int) -> QuerySpec | None:
    """A short description that singles out ``ref`` (category, + colour, + superlative), or None."""
    category, colour = str(geometry.category[ref]), str(geometry.colour[ref])
    forms = [QuerySpec(category), QuerySpec(category, colour)]
    extra = [QuerySpec(category, size="largest"), QuerySpec(category, size="smallest"),
             QuerySpec(category, colour, size="largest"), QuerySpec(category, colour, size="smallest")]
    for i in rng.permutation(len(extra)):
        forms.append(extra[int(i)])
    for spec in forms:
        if singles_out(spec, geometry, ref):
            return spec
    return None


def _region_of(rng: np.random.Generator, geometry: SceneGeometry, target: int) -> str:
    quadrants = rng.random() < 0.35
    names = [n for n in REGIONS if n.endswith("quadrant") == quadrants]
    inside = [n for n in names if region_mask(geometry, n)[target]]
    return inside[int(rng.integers(len(inside)))]


def _sample_spec(rng: np.random.Generator, geometry: SceneGeometry, target: int) -> QuerySpec | None:
    """One random description of ``target`` (not yet checked for uniqueness)."""
    category = str(geometry.category[target])
    colour = str(geometry.colour[target]) if rng.random() < 0.55 else None
    size = None
    if rng.random() < 0.35:
        small_cut, large_cut = SIZE_CUTS_PX[category]
        words = ["largest", "smallest"]
        words += ["small"] if geometry.area[target] < small_cut else []
        words += ["large"] if geometry.area[target] >= large_cut else []
        size = words[int(rng.integers(len(words)))]
    region = _region_of(rng, geometry, target) if rng.random() < 0.4 else None
    relation = reference = None
    if rng.random() < 0.5 and geometry.count > 1:
        others = np.flatnonzero(np.arange(geometry.count) != target)
        near = rng.random() < 0.5
        # near references for "next to" / "nearest to"; otherwise anything, big ones more often
        weight = 1 / (geometry.box_gaps_to(target)[others] + 5) ** 2 if near else np.sqrt(geometry.area[others])
        ref = int(rng.choice(others, p=weight / weight.sum()))
        reference = _reference_spec(rng, geometry, ref)
        if reference is None:
            return None
        holds = [r for r in ("left_of", "right_of", "above", "below", "next_to")
                 if relation_mask(geometry, r, ref)[target]]
        if near and size not in ("largest", "smallest"):
            holds += ["nearest_to"] * 2
        if not holds:
            return None
        relation = holds[int(rng.integers(len(holds)))]
    return QuerySpec(category, colour, size, region, relation, reference)


def generate_queries(scene: AerialScene, rng: np.random.Generator, count: int,
                     small_fraction: float = SMALL_TARGET_FRACTION, attempts: int = 40,
                     geometry: SceneGeometry | None = None) -> list[AerialQuery]:
    """Up to ``count`` queries on distinct targets, each singling out its target (``singles_out``).

    Each query first draws whether its target is Small (< 500 px²) with ``small_fraction``, then
    tries targets of that kind (the other kind when none is left) with ``attempts`` random specs
    each. Fewer than ``count`` come back only when no describable target is left.
    """
    geometry = geometry or scene_geometry(scene)
    small = geometry.area < SMALL_AREA_PX
    used: set[int] = set()
    queries: list[AerialQuery] = []
    for _ in range(count):
        want_small = rng.random() < small_fraction
        free = [i for i in range(geometry.count) if i not in used]
        first = [i for i in free if small[i] == want_small]
        second = [i for i in free if small[i] != want_small]
        found = None
        for target in [int(t) for t in rng.permutation(first)] + [int(t) for t in rng.permutation(second)]:
            for _attempt in range(attempts):
                spec = _sample_spec(rng, geometry, target)
                if spec is not None and singles_out(spec, geometry, target) and has_rivals(spec, geometry):
                    found = (target, spec)
                    break
            if found:
                break
            used.add(target)  # no description found: skip it next time too
        if found is None:
            break
        target, spec = found
        used.add(target)
        ref = None
        if spec.reference is not None:
            ref = int(np.flatnonzero(evaluate_query(spec.reference, geometry))[0]) + 1
        phrase = describe(spec)
        template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
        queries.append(AerialQuery(template.format(phrase), phrase, answer_text(geometry, target), target + 1, ref, spec,
                                   scene.mask(target + 1)))
    return queries
