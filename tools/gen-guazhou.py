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


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--reference", default=os.path.join(here, "..", "data", "reference", "guazhou-townships.csv"))
    ap.add_argument("--out", default=os.path.join(here, "..", "data", "guazhou"))
    args = ap.parse_args()
    rng = random.Random(620922)
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
    for tcode, vs in by_town.items():
        cx, cy = OFFSETS[tcode]
        size = 0.45 if tcode == "620922100" else 1.4  # km per grid cell
        # Village blocks side by side in rows around the township centre.
        per_row = math.ceil(math.sqrt(len(vs)))
        block_w = max(math.ceil(math.sqrt(n)) for _, _, n in vs) * size + size
        for k, (vcode, seat, n) in enumerate(vs):
            bx = cx + (k % per_row - per_row / 2) * block_w
            by = cy + (k // per_row - per_row / 2) * block_w
            cols = math.ceil(math.sqrt(n))
            for g in range(n):
                x0 = bx + (g % cols) * size
                y0 = by + (g // cols) * size
                ring = []
                for dx, dy in [(0, 0), (size, 0), (size, size), (0, size), (0, 0)]:
                    ddx, ddy = km_to_deg(x0 + dx, y0 + dy, SEAT[1])
                    ring.append([round(SEAT[0] + ddx, 6), round(SEAT[1] + ddy, 6)])
                gcode = vcode + "%03d" % (g + 1)
                worker_no += 1
                name = SURNAMES[rng.randrange(len(SURNAMES))] + GIVEN[rng.randrange(len(GIVEN))] + \
                    (GIVEN[rng.randrange(len(GIVEN))] if rng.random() < 0.6 else "")
                features.append({"type": "Feature",
                                 "properties": {"grid_code": gcode, "name": "合成网格%s-%03d" % (vcode[-6:], g + 1),
                                                "village_code": vcode, "worker_id": "w-%04d" % worker_no,
                                                "worker_name": name + "（合成）", "synthetic": True},
                                 "geometry": {"type": "Polygon", "coordinates": [ring]}})
                cells.append((gcode, ring))

    cameras = []
    industries = ["00", "01", "08"]
    for serial in range(1, 321):
        # Cameras cluster in the county seat and along township centres.
        gcode, ring = cells[rng.randrange(len(cells))] if rng.random() < 0.6 else \
            [c for c in cells if c[0].startswith("620922100")][rng.randrange(230)]
        (x0, y0), (x1, y1) = ring[0], ring[2]
        lon, lat = x0 + (x1 - x0) * rng.uniform(0.1, 0.9), y0 + (y1 - y0) * rng.uniform(0.1, 0.9)
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
