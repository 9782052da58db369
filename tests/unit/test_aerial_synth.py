"""Aerial scenes and their queries: deterministic per seed, masks agree with the boxes and areas
they come with, and every query's meaning — re-evaluated here from the masks alone with plain
numpy — selects exactly its target; a good share of targets is Small (< 500 px²)."""

import numpy as np
import pytest
from pydantic import ValidationError

from edgeperc.errors import ConfigError
from edgeperc.synth.aerial import (CATEGORIES, ROOF_COLOURS, SMALL_AREA_PX, TREE_COLOURS, VEHICLE_COLOURS, WATER_COLOURS,
                                   AerialRecipe, aerial_recipe, render_aerial, size_class)
from edgeperc.synth.aerial_preview import draw_query_tile, montage
from edgeperc.synth.aerial_queries import (NEXT_TO_PX, REGIONS, SIZE_CUTS_PX, QuerySpec, describe, evaluate_query,
                                           generate_queries, has_rivals, scene_geometry, singles_out)

PALETTES = {"building": ROOF_COLOURS, "vehicle": VEHICLE_COLOURS, "tree": TREE_COLOURS, "water": WATER_COLOURS}


def _scene(seed, name="default", size=512):
    return render_aerial(np.random.default_rng(seed), aerial_recipe(name, (size, size)))


@pytest.fixture(scope="module")
def scenes_with_queries():
    """Eight 512 px scenes (both recipes) with four queries each."""
    out = []
    for seed in range(8):
        scene = _scene(seed, "shifted" if seed % 4 == 3 else "default")
        out.append((scene, generate_queries(scene, np.random.default_rng([seed, 1]), 4)))
    return out


# --- a reference evaluator: from the instance map only, loops and brute force -----------------


def _reference_objects(scene):
    objects = {}
    for instance_id in range(1, int(scene.instance_map.max()) + 1):
        mask = scene.instance_map == instance_id
        ys, xs = np.nonzero(mask)
        inner = mask.copy()  # boundary = pixels with a 4-neighbour outside: the closest pair lies on it
        inner[1:-1, 1:-1] = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
        by, bx = np.nonzero(mask & ~inner)
        obj = scene.objects[instance_id - 1]
        objects[instance_id] = {"category": obj.category, "colour": obj.colour, "area": len(ys),
                                "cx": xs.mean(), "cy": ys.mean(),
                                "box": (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1),
                                "edge": np.stack([bx, by], 1).astype(float)}
    return objects


def _gap(a, b):
    diff = a["edge"][:, None, :] - b["edge"][None, :, :]
    return float(np.sqrt((diff ** 2).sum(-1)).min())


def _reference_select(spec, objects, hw):
    height, width = hw
    ids = [i for i, o in objects.items() if o["category"] == spec.category
           and (spec.colour is None or o["colour"] == spec.colour)]
    if spec.region:
        x0, x1, y0, y1 = REGIONS[spec.region]
        ids = [i for i in ids if x0 <= objects[i]["cx"] / width < x1 and y0 <= objects[i]["cy"] / height < y1]
    if spec.reference:
        refs = _reference_select(spec.reference, objects, hw)
        if len(refs) != 1:
            return []
        r = objects[refs[0]]
        ids = [i for i in ids if i != refs[0]]
        tests = {"left_of": lambda o: o["box"][2] <= r["box"][0], "right_of": lambda o: o["box"][0] >= r["box"][2],
                 "above": lambda o: o["box"][3] <= r["box"][1], "below": lambda o: o["box"][1] >= r["box"][3],
                 "next_to": lambda o: _gap(o, r) <= NEXT_TO_PX}
        if spec.relation in tests:
            ids = [i for i in ids if tests[spec.relation](objects[i])]
    small_cut, large_cut = SIZE_CUTS_PX[spec.category]
    if spec.size == "small":
        ids = [i for i in ids if objects[i]["area"] < small_cut]
    if spec.size == "large":
        ids = [i for i in ids if objects[i]["area"] >= large_cut]
    if ids and spec.size in ("largest", "smallest"):
        pick = max if spec.size == "largest" else min
        best = pick(objects[i]["area"] for i in ids)
        ids = [i for i in ids if objects[i]["area"] == best]
    if ids and spec.relation == "nearest_to":
        gaps = {i: _gap(objects[i], r) for i in ids}
        ids = [i for i in ids if gaps[i] == min(gaps.values())]
    return ids


# --- recipes -----------------------------------------------------------------------------------


def test_recipe_validation():
    with pytest.raises(ValidationError, match="multiple of 16"):
        AerialRecipe(size_hw=(500, 512))
    with pytest.raises(ValidationError, match="multiple of 16"):
        AerialRecipe(size_hw=(64, 64))
    with pytest.raises(ValidationError):
        AerialRecipe(clouds=True)  # extra fields are refused
    with pytest.raises(ValidationError, match="tree_radius_px"):
        AerialRecipe(tree_radius_px=(9.0, 4.0))
    with pytest.raises(ConfigError, match="default, shifted"):
        aerial_recipe("nope")
    with pytest.raises(ConfigError, match="size_hw"):
        aerial_recipe("default", (100, 100))
    shifted = aerial_recipe("shifted", (256, 256))
    assert shifted.size_hw == (256, 256) and shifted.ground == "arid" and shifted.vehicles != AerialRecipe().vehicles
    assert size_class(499) == "small" and size_class(SMALL_AREA_PX) == "large"


# --- scenes ------------------------------------------------------------------------------------


def test_deterministic_per_seed():
    a, b, c = _scene(4, size=256), _scene(4, size=256), _scene(5, size=256)
    assert a.image.shape == (256, 256, 3) and a.image.dtype == np.uint8
    assert a.instance_map.shape == (256, 256) and a.instance_map.dtype == np.uint16
    assert a.image.tobytes() == b.image.tobytes() and a.instance_map.tobytes() == b.instance_map.tobytes()
    assert a.objects == b.objects and a.metadata == b.metadata
    assert not np.array_equal(a.image, c.image)
    qa = generate_queries(a, np.random.default_rng(1), 3)
    qb = generate_queries(b, np.random.default_rng(1), 3)
    assert [(q.text, q.target_id, q.answer) for q in qa] == [(q.text, q.target_id, q.answer) for q in qb]


@pytest.mark.parametrize("name", ["default", "shifted"])
def test_masks_match_boxes_areas_and_centroids(name):
    scene = _scene(11, name)
    ids = np.unique(scene.instance_map)
    assert list(ids) == list(range(len(scene.objects) + 1))  # 0 = background, then every object, nothing else
    categories = {o.category for o in scene.objects}
    assert categories <= set(CATEGORIES) and {"building", "vehicle"} <= categories
    for obj in scene.objects:
        mask = scene.mask(obj.instance_id)
        ys, xs = np.nonzero(mask)
        assert obj.area_px == mask.sum() > 0
        assert obj.bbox_xyxy == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        assert np.allclose(obj.centroid_xy, (xs.mean(), ys.mean()))
        assert obj.colour in PALETTES[obj.category]
        x0, y0, x1, y1 = obj.bbox_xyxy
        assert 0 < x0 and 0 < y0 and x1 < 512 and y1 < 512  # never cut by the border
        assert obj.to_json()["size_class"] == size_class(obj.area_px)


def test_size_mix_follows_the_categories():
    scenes = [_scene(seed) for seed in range(4)]
    objects = [o for s in scenes for o in s.objects]
    assert all(o.is_small for o in objects if o.category == "vehicle")
    assert all(not o.is_small for o in objects if o.category == "water")
    buildings = [o.is_small for o in objects if o.category == "building"]
    assert 0 < sum(buildings) < len(buildings)  # sheds are Small, houses Large
    assert sum(s.metadata["small_objects"] for s in scenes) > sum(s.metadata["large_objects"] for s in scenes)


def test_object_counts_scale_with_the_area():
    small = [len(_scene(seed, size=256).objects) for seed in range(3)]
    large = [len(_scene(seed, size=512).objects) for seed in range(3)]
    assert 2 * sum(small) < sum(large)


# --- queries -----------------------------------------------------------------------------------


def test_spec_validation_and_wording():
    spec = QuerySpec("vehicle", "red", "small", None, "left_of", QuerySpec("building", size="largest"))
    assert describe(spec) == "the small red vehicle left of the largest building"
    assert describe(QuerySpec("tree", relation="nearest_to", reference=QuerySpec("water"))) == "the tree nearest to the pond"
    assert describe(QuerySpec("building", region="top-right")) == "the building in the top-right corner"
    with pytest.raises(ValueError, match="one selector"):
        QuerySpec("tree", size="largest", relation="nearest_to", reference=QuerySpec("water"))
    with pytest.raises(ValueError, match="together"):
        QuerySpec("tree", relation="left_of")
    with pytest.raises(ValueError, match="category"):
        QuerySpec("ship")
    with pytest.raises(ValueError, match="region"):
        QuerySpec("tree", region="north")


def test_gaps_match_brute_force():
    scene = _scene(2)
    geometry = scene_geometry(scene)
    objects = _reference_objects(scene)
    for index in (0, 5, len(scene.objects) - 1):
        exact = geometry.gaps_to(index)
        near = geometry.gaps_to(index, reach_px=15.0)
        for j, obj in objects.items():
            expected = 0.0 if j == index + 1 else _gap(obj, objects[index + 1])
            assert exact[j - 1] == pytest.approx(expected, abs=1e-3)
            assert near[j - 1] == (pytest.approx(expected, abs=1e-3) if expected <= 15.0 else np.inf)
        assert (geometry.box_gaps_to(index) <= exact + 1e-9).all()


def test_every_query_selects_exactly_its_target(scenes_with_queries):
    total = 0
    for scene, queries in scenes_with_queries:
        assert len(queries) == 4 and len({q.target_id for q in queries}) == 4
        objects = _reference_objects(scene)
        geometry = scene_geometry(scene)
        for q in queries:
            assert _reference_select(q.spec, objects, scene.instance_map.shape) == [q.target_id], q.text
            assert np.array_equal(q.mask, scene.instance_map == q.target_id)
            target = scene.objects[q.target_id - 1]
            assert q.answer == f"It is the {target.colour} {describe(QuerySpec(target.category)).split()[-1]}. [SEG]"
            assert q.phrase in q.text and q.phrase == describe(q.spec)
            assert singles_out(q.spec, geometry, q.target_id - 1) and has_rivals(q.spec, geometry)
            if q.spec.reference is not None:
                assert _reference_select(q.spec.reference, objects, scene.instance_map.shape) == [q.reference_id]
            total += 1
    assert total == 32


def test_queries_mix_small_and_large_targets_and_grammar(scenes_with_queries):
    queries = [q for _, qs in scenes_with_queries for q in qs]
    small = sum(q.is_small for q in queries)
    assert 0.3 * len(queries) <= small <= 0.9 * len(queries)
    assert {q.spec.category for q in queries} >= {"building", "vehicle", "tree"}
    assert any(q.spec.relation for q in queries) and any(q.spec.region for q in queries)
    assert any(q.spec.size for q in queries) and any(q.spec.colour for q in queries)


def test_ambiguous_specs_are_refused():
    """A spec that fits two objects selects both; singles_out says no."""
    scene = _scene(0)
    geometry = scene_geometry(scene)
    vehicles = [o for o in scene.objects if o.category == "vehicle"]
    colour = max({o.colour for o in vehicles}, key=lambda c: sum(o.colour == c for o in vehicles))
    spec = QuerySpec("vehicle", colour)
    chosen = evaluate_query(spec, geometry)
    assert chosen.sum() >= 2
    assert not singles_out(spec, geometry, int(np.flatnonzero(chosen)[0]))


def test_preview_tile_and_montage():
    scene = _scene(1, size=256)
    [query] = generate_queries(scene, np.random.default_rng(0), 1)
    tile = draw_query_tile(scene.image, query.mask, [query.text, query.answer])
    assert tile.shape[1] == 256 and tile.shape[0] > 256 and tile.dtype == np.uint8
    assert not np.array_equal(tile[:256][query.mask], scene.image[query.mask])  # the target is tinted
    sheet = montage([tile] * 4, columns=3)
    assert sheet.shape[1] == 3 * (256 + 6) and sheet.shape[0] == 2 * (tile.shape[0] + 6)
