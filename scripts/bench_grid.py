"""Grid lookup speed: random positions against a generated city grid, through agent.geo.grid.GridIndex.

Makes `--cells` irregular grid cells (a Voronoi tessellation of random seeds over about 30 x 30 km
around Hangzhou, like real 网格 cells: convex, different sizes, shared edges), writes them as a
GeoJSON file in a temporary folder, loads it the way the agent does, and looks up `--points`
random positions: once in a single vectorised call (`lookup_many`) and once one at a time
(`lookup`, as the pipeline does per case). Both answers are checked against each other and a
sample against a brute-force test of every cell.

    .venv/bin/python scripts/bench_grid.py [--cells 5000] [--points 10000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely

from agent.geo.grid import GridIndex

WEST, SOUTH, EAST, NORTH = 120.00, 30.15, 120.30, 30.42  # about 29 x 30 km


def make_grid(path: Path, cells: int, rng: np.random.Generator) -> None:
    seeds = shapely.points(rng.uniform(WEST, EAST, cells), rng.uniform(SOUTH, NORTH, cells))
    frame = shapely.box(WEST, SOUTH, EAST, NORTH)
    polygons = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds))), frame)
    features = [
        {
            "type": "Feature",
            "properties": {"code": f"BENCH-{i:05d}", "name": f"网格{i}", "street": f"街道{i // 50}", "district": "区"},
            "geometry": json.loads(shapely.to_geojson(shapely.set_precision(polygon, 1e-7))),
        }
        for i, polygon in enumerate(polygons)
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=5000)
    parser.add_argument("--points", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "grid.geojson"
        make_grid(path, args.cells, rng)
        started = time.perf_counter()
        grid = GridIndex.load(path)
        load_s = time.perf_counter() - started
        size_mb = path.stat().st_size / 1e6
        features = json.loads(path.read_text(encoding="utf-8"))["features"]
        polygons = [shapely.from_geojson(json.dumps(f["geometry"])) for f in features]
    # a margin around the grid, so that some positions fall outside every cell
    lat = rng.uniform(SOUTH - 0.02, NORTH + 0.02, args.points)
    lon = rng.uniform(WEST - 0.02, EAST + 0.02, args.points)

    started = time.perf_counter()
    batch = grid.lookup_many(lat, lon)
    batch_s = time.perf_counter() - started

    started = time.perf_counter()
    single = [grid.lookup(a, o) for a, o in zip(lat, lon, strict=True)]
    single_s = time.perf_counter() - started

    codes = [cell.code if cell else None for cell in single]
    assert codes == [grid.cells[i].code if i >= 0 else None for i in batch], "lookup and lookup_many disagree"
    checked = _brute_force_check(polygons, lat, lon, batch)

    inside = int((batch >= 0).sum())
    print(f"grid: {len(grid)} cells ({size_mb:.1f} MB GeoJSON), loaded and indexed in {load_s:.3f} s")
    print(f"positions: {args.points}, {inside} inside a cell, {args.points - inside} outside every cell")
    print(f"lookup_many (one vectorised call): {batch_s:.4f} s = {batch_s / args.points * 1e6:.1f} us per position")
    print(f"lookup (one position at a time):   {single_s:.4f} s = {single_s / args.points * 1e6:.1f} us per position")
    print(f"answers agree; {checked} positions also checked against every cell by brute force")


def _brute_force_check(polygons: list[shapely.Geometry], lat: np.ndarray, lon: np.ndarray, batch: np.ndarray) -> int:
    """The first cell (file order) that holds each of 200 positions, by testing every cell."""
    sample = range(min(200, len(lat)))
    for i in sample:
        hits = np.flatnonzero(shapely.intersects_xy(polygons, lon[i], lat[i]))
        expected = int(hits[0]) if len(hits) else -1
        assert batch[i] == expected, f"position {i}: index says {batch[i]}, brute force {expected}"
    return len(sample)


if __name__ == "__main__":
    main()
