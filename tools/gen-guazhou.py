#!/usr/bin/env python3
"""Generates the Guazhou County (瓜州县, 620922) demo dataset under data/guazhou/.

The 15 townships and their codes are real (data/reference/guazhou-townships.csv).
EVERYTHING ELSE IS SYNTHETIC: township positions, the 83 villages/communities, the 767 grid
polygons, grid-worker names and the camera positions. Names of synthetic divisions carry the
marker 合成 ("synthetic"). Deterministic: the same run gives the same files.

    tools/gen-guazhou.py [--reference data/reference/guazhou-townships.csv] [--out data/guazhou]
"""
import argparse, csv, json, math, os, random

SEAT = (95.78, 40.52)  # county seat, 渊泉镇, approximately (public fact)
# Synthetic township centres, as offsets (km east, km north) from the seat. Not real positions.
OFFSETS = {
    "620922100": (0, 0), "620922101": (-40, 60), "620922102": (-30, 5), "620922103": (-15, -12),
    "620922104": (-60, -25), "620922105": (20, 12), "620922106": (-50, 8), "620922107": (35, -5),
    "620922108": (12, -20), "620922109": (55, 10), "620922201": (70, 0), "620922212": (-20, 20),
    "620922214": (-75, -10), "620922215": (18, 25), "620922216": (40, 25),
}
VILLAGES = {"620922100": 10, "620922101": 4, "620922102": 6, "620922103": 6, "620922104": 5, "620922105": 6,
            "620922106": 5, "620922107": 6, "620922108": 5, "620922109": 5, "620922201": 5, "620922212": 5,
            "620922214": 5, "620922215": 5, "620922216": 5}
TOTAL_GRIDS = 767
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红建华文斌志强海燕建国建军晓东小红春梅"


def km_to_deg(dx, dy, lat):
    return dx / (111.320 * math.cos(math.radians(lat))), dy / 110.574


# ---- plane geometry in km (convex polygons as lists of (x, y), counter-clockwise)

def clip(poly, a, b, c):
    """The part of a convex polygon where a*x + b*y <= c (Sutherland-Hodgman, one half-plane)."""
    out = []
    for i, p in enumerate(poly):
        q = poly[(i + 1) % len(poly)]
        fp, fq = a * p[0] + b * p[1] - c, a * q[0] + b * q[1] - c
        if fp <= 0:
            out.append(p)
        if (fp < 0 < fq) or (fq < 0 < fp):
            t = fp / (fp - fq)
            out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    return out


def voronoi(points, region):
    """Each point's Voronoi cell inside the convex region: the region cut by the perpendicular
    bisector towards every other point. The cells tile the region exactly."""
    cells = []
    for i, (px, py) in enumerate(points):
        cell = list(region)
        for j, (qx, qy) in enumerate(points):
            if i != j:
                # |x - p|^2 <= |x - q|^2  <=>  2(q - p).x <= |q|^2 - |p|^2
                cell = clip(cell, 2 * (qx - px), 2 * (qy - py), qx * qx + qy * qy - px * px - py * py)
        cells.append(cell)
    return cells


def area(poly):
    return abs(sum(p[0] * q[1] - q[0] * p[1] for p, q in zip(poly, poly[1:] + poly[:1]))) / 2


def centroid(poly):
    a = sum(p[0] * q[1] - q[0] * p[1] for p, q in zip(poly, poly[1:] + poly[:1])) / 2
    cx = sum((p[0] + q[0]) * (p[0] * q[1] - q[0] * p[1]) for p, q in zip(poly, poly[1:] + poly[:1])) / (6 * a)
    cy = sum((p[1] + q[1]) * (p[0] * q[1] - q[0] * p[1]) for p, q in zip(poly, poly[1:] + poly[:1])) / (6 * a)
    return cx, cy


def contains(poly, x, y):
    return all((q[0] - p[0]) * (y - p[1]) - (q[1] - p[1]) * (x - p[0]) >= 0 for p, q in zip(poly, poly[1:] + poly[:1]))


def inside(rng, poly):
    xs, ys = [p[0] for p in poly], [p[1] for p in poly]
    while True:
        x, y = rng.uniform(min(xs), max(xs)), rng.uniform(min(ys), max(ys))
        if contains(poly, x, y):
            return x, y


def shrink(poly, k):
    cx, cy = centroid(poly)
    return [(cx + (x - cx) * k, cy + (y - cy) * k) for x, y in poly]


def share_vertices(groups, eps=1e-7):
    """groups: [(key, [cell])]; returns the same with every vertex snapped to one registry
    (points within eps km are one) and every registered vertex lying on a cell's edge inserted
    into it."""
    registry = []
    def snap(p):
        for q in registry:
            if abs(q[0] - p[0]) < eps and abs(q[1] - p[1]) < eps:
                return q
        registry.append(p)
        return p
    snapped = [(key, [[snap(p) for p in cell] for cell in cells]) for key, cells in groups]
    out = []
    for key, cells in snapped:
        done = []
        for cell in cells:
            ring = []
            for i, a in enumerate(cell):
                b = cell[(i + 1) % len(cell)]
                ring.append(a)
                dx, dy = b[0] - a[0], b[1] - a[1]
                length2 = dx * dx + dy * dy
                if length2 == 0:
                    continue
                on = []
                for q in registry:
                    if q is a or q is b:
                        continue
                    t = ((q[0] - a[0]) * dx + (q[1] - a[1]) * dy) / length2
                    if 0 < t < 1:
                        px, py = a[0] + t * dx, a[1] + t * dy
                        if abs(px - q[0]) < 1e-6 and abs(py - q[1]) < 1e-6:
                            on.append((t, q))
                ring.extend(q for _, q in sorted(on))
            done.append(ring)
        out.append((key, done))
    return out


def hull(points):
    """Convex hull, counter-clockwise (monotone chain)."""
    pts = sorted(set(points))
    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def patch(rng, centre, radius):
    """A township's land: a convex, irregular patch of about pi * radius^2 around its seat."""
    cx, cy = centre
    points = []
    for k in range(18):
        a = 2 * math.pi * k / 18 + rng.uniform(-0.1, 0.1)
        r = radius * rng.uniform(0.8, 1.2)
        points.append((cx + r * math.cos(a) * 1.15, cy + r * math.sin(a) / 1.15))
    return hull(points)


def spread(rng, region, n, weights=None):
    """n points spread over the region (Lloyd's relaxation of random ones: cells of even size, or
    of sizes in proportion to `weights`, which the relaxation approximates by repeating it on
    points weighted towards the larger ones)."""
    points = [inside(rng, region) for _ in range(n)]
    for _ in range(12):
        cells = voronoi(points, region)
        points = [centroid(c) if len(c) >= 3 and area(c) > 0 else p for c, p in zip(cells, points)]
    if weights:
        # Power-diagram-like nudging is overkill for a demo: a few passes moving each point away
        # from its neighbours in proportion to its weight give larger cells to heavier villages.
        for _ in range(20):
            cells = voronoi(points, region)
            total = sum(area(c) for c in cells)
            want = [w / sum(weights) * total for w in weights]
            moved = []
            for i, (p, c) in enumerate(zip(points, cells)):
                dx = dy = 0.0
                for j, q in enumerate(points):
                    if i == j:
                        continue
                    d = math.hypot(p[0] - q[0], p[1] - q[1]) or 1e-9
                    push = (want[i] / max(area(c), 1e-9) - want[j] / max(area(cells[j]), 1e-9)) * 0.05 / d
                    dx += (p[0] - q[0]) / d * push
                    dy += (p[1] - q[1]) / d * push
                x, y = p[0] + dx, p[1] + dy
                moved.append((x, y) if contains(region, x, y) else p)
            points = moved
    return points


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--reference", default=os.path.join(here, "..", "data", "reference", "guazhou-townships.csv"))
    ap.add_argument("--out", default=os.path.join(here, "..", "data", "guazhou"))
    args = ap.parse_args()
    rng = random.Random(620922)
    # Geometry draws from its own generator: `rng` gives names and ids, as in every earlier version.
    geo = random.Random(9220620)
    with open(args.reference, encoding="utf-8") as f:
        towns = list(csv.DictReader(f))
    county = [t for t in towns if t["kind"] == "county"][0]
    townships = [t for t in towns if t["kind"] != "county"]
    assert len(townships) == 15 and sum(VILLAGES.values()) == 83

    divisions = [(county["code"], county["name"], "county", "")]
    villages = []  # (code, township, is_seat)
    for t in townships:
        divisions.append((t["code"], t["name"], t["kind"], county["code"]))
        n = VILLAGES[t["code"]]
        for i in range(1, n + 1):
            if t["code"] == "620922100":
                code, name, kind = t["code"] + "%03d" % i, "%s合成社区%02d" % (t["name"], i), "community"
            else:
                code, name, kind = t["code"] + "%03d" % (200 + i), "%s合成村%02d" % (t["name"], i), "village"
            divisions.append((code, name, kind, t["code"]))
            villages.append((code, t["code"], t["code"] == "620922100"))

    # Grids per village: seat communities are dense (urban grids), the rest rural; total 767.
    weights = [3.0 if seat else 1.0 for _, _, seat in villages]
    raw = [w * TOTAL_GRIDS / sum(weights) for w in weights]
    counts = [max(3, int(r)) for r in raw]
    i = 0
    while sum(counts) < TOTAL_GRIDS:
        counts[i % len(counts)] += 1
        i += 1
    while sum(counts) > TOTAL_GRIDS:
        j = counts.index(max(counts))
        counts[j] -= 1

    features, cells = [], []
    by_town = {}
    for (vcode, tcode, seat), n in zip(villages, counts):
        by_town.setdefault(tcode, []).append((vcode, seat, n))
    worker_no = 0
    # Every township is one patch of land (an oasis around its seat) tiled by its villages, every
    # village tiled by its grids: Voronoi cells of synthetic points, clipped to the patch (km
    # east/north of the county seat, then degrees).
    for tcode, vs in by_town.items():
        cx, cy = OFFSETS[tcode]
        cell_km2 = 0.2 if tcode == "620922100" else 2.0  # a grid: urban ~0.2 km², rural ~2 km²
        area = sum(n for _, _, n in vs) * cell_km2
        township = patch(geo, (cx, cy), math.sqrt(area / math.pi))
        village_points = spread(geo, township, len(vs), weights=[n for _, _, n in vs])
        town_cells = []
        for (vcode, seat, n), vcell in zip(vs, voronoi(village_points, township)):
            grid_points = spread(geo, vcell, n)
            town_cells.append((vcode, voronoi(grid_points, vcell)))
        # Neighbours share their boundary vertex for vertex: equal points computed twice are made
        # one, and a vertex of one cell lying on another's edge (where grids of two villages meet)
        # is inserted into that edge, so rounding cannot open slivers between them.
        town_cells = share_vertices(town_cells)
        for vcode, gcells in town_cells:
            for g, gcell in enumerate(gcells):
                ring = []
                for x, y in gcell + [gcell[0]]:
                    ddx, ddy = km_to_deg(x, y, SEAT[1])
                    ring.append([round(SEAT[0] + ddx, 7), round(SEAT[1] + ddy, 7)])
                gcode = vcode + "%03d" % (g + 1)
                worker_no += 1
                name = SURNAMES[rng.randrange(len(SURNAMES))] + GIVEN[rng.randrange(len(GIVEN))] + \
                    (GIVEN[rng.randrange(len(GIVEN))] if rng.random() < 0.6 else "")
                features.append({"type": "Feature",
                                 "properties": {"grid_code": gcode, "name": "合成网格%s-%03d" % (vcode[-6:], g + 1),
                                                "village_code": vcode, "worker_id": "w-%04d" % worker_no,
                                                "worker_name": name + "（合成）", "synthetic": True},
                                 "geometry": {"type": "Polygon", "coordinates": [ring]}})
                cells.append((gcode, gcell))

    cameras = []
    industries = ["00", "01", "08"]
    for serial in range(1, 321):
        # Cameras cluster in the county seat and along township centres.
        gcode, cell = cells[rng.randrange(len(cells))] if rng.random() < 0.6 else \
            [c for c in cells if c[0].startswith("620922100")][rng.randrange(230)]
        # Inside the grid, away from its edges (a camera belongs to one grid). Two draws of `rng`
        # are skipped, as the square grids of earlier versions used them: the ids and names of
        # cameras and workers stay those of every earlier dataset.
        rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9)
        x, y = inside(geo, shrink(cell, 0.8))
        dlon, dlat = km_to_deg(x, y, SEAT[1])
        lon, lat = SEAT[0] + dlon, SEAT[1] + dlat
        ind = industries[rng.randrange(3)]
        device = "62092200" + ind + "132" + "0" + "%06d" % serial
        cameras.append((device, "合成摄像机%03d" % serial, round(lon, 6), round(lat, 6), "wgs84"))

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "divisions.csv"), "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["code", "name", "kind", "parent_code"])
        w.writerows(divisions)
    with open(os.path.join(args.out, "grids.geojson"), "w", encoding="utf-8") as f:
        json.dump({"type": "FeatureCollection", "name": "guazhou-grids-SYNTHETIC",
                   "description": "SYNTHETIC demo grids for Guazhou County; not real boundaries",
                   "features": features}, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    with open(os.path.join(args.out, "cameras.csv"), "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["device_id", "name", "lon", "lat", "crs"])
        w.writerows(cameras)
    print("divisions %d (villages %d), grids %d, cameras %d -> %s" %
          (len(divisions), len(villages), len(features), len(cameras), args.out))


if __name__ == "__main__":
    main()
