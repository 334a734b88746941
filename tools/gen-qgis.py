#!/usr/bin/env python3
"""Writes deploy/qgis/liandong.qgs: a QGIS 3 project over the Liandong PostGIS views.

Every layer connects through the pg_service name `liandong` (deploy/qgis/pg_service.conf.example),
so the project stores no host, user or password: each operator's own service entry (an operator
login, `liandongd operator grant`) decides what they see. Regenerate after changing a layer:
    tools/gen-qgis.py
tools/test checks that every table, view and column the project names exists and that an
operator can read it.
"""
import os
from xml.sax.saxutils import quoteattr, escape

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CRS = """<spatialrefsys nativeFormat="Wkt"><wkt>GEOGCRS["WGS 84",ENSEMBLE["World Geodetic System 1984 ensemble",MEMBER["World Geodetic System 1984 (G2139)"],ELLIPSOID["WGS 84",6378137,298.257223563,LENGTHUNIT["metre",1]]],PRIMEM["Greenwich",0,ANGLEUNIT["degree",0.0174532925199433]],CS[ellipsoidal,2],AXIS["geodetic latitude (Lat)",north,ORDER[1],ANGLEUNIT["degree",0.0174532925199433]],AXIS["geodetic longitude (Lon)",east,ORDER[2],ANGLEUNIT["degree",0.0174532925199433]],USAGE[SCOPE["Horizontal component of 3D system."],AREA["World."],BBOX[-90,-180,90,180]],ID["EPSG",4326]]</wkt><proj4>+proj=longlat +datum=WGS84 +no_defs</proj4><srsid>3452</srsid><srid>4326</srid><authid>EPSG:4326</authid><description>WGS 84</description><projectionacronym>longlat</projectionacronym><ellipsoidacronym>EPSG:7030</ellipsoidacronym><geographicflag>true</geographicflag></spatialrefsys>"""

CATEGORY_COLORS = [
    ("intrusion", "31,119,180"), ("crowd", "148,103,189"), ("fire", "214,39,40"), ("fight", "140,86,75"),
    ("traffic", "255,127,14"), ("loitering", "23,190,207"), ("left_object", "188,189,34"), ("theft", "127,127,127"),
    ("dispute", "227,119,194"), ("public_order", "44,160,44"), ("environment", "0,109,44"), ("medical", "8,81,156"),
    ("device_fault", "99,99,99"), ("tamper", "0,0,0"),
]


def opt(name, value):
    return f'<Option name={quoteattr(name)} value={quoteattr(value)} type="QString"/>'


def fill(color, outline, width, style="solid"):
    return (f'<symbol type="fill" name="0" alpha="1" clip_to_extent="1" force_rhr="0"><layer class="SimpleFill" enabled="1" locked="0" pass="0">'
            f'<Option type="Map">{opt("color", color)}{opt("style", style)}{opt("outline_color", outline)}'
            f'{opt("outline_style", "solid")}{opt("outline_width", width)}{opt("outline_width_unit", "MM")}</Option></layer></symbol>')


def marker(name, color, shape, size, outline="35,35,35,255"):
    return (f'<symbol type="marker" name={quoteattr(name)} alpha="1" clip_to_extent="1" force_rhr="0"><layer class="SimpleMarker" enabled="1" locked="0" pass="0">'
            f'<Option type="Map">{opt("color", color)}{opt("name", shape)}{opt("size", size)}{opt("size_unit", "MM")}'
            f'{opt("outline_color", outline)}{opt("outline_width", "0.2")}</Option></layer></symbol>')


def line(color, width):
    return (f'<symbol type="line" name="0" alpha="1" clip_to_extent="1" force_rhr="0"><layer class="SimpleLine" enabled="1" locked="0" pass="0">'
            f'<Option type="Map">{opt("line_color", color)}{opt("line_width", width)}{opt("line_width_unit", "MM")}'
            f'{opt("line_style", "solid")}{opt("capstyle", "round")}{opt("joinstyle", "round")}</Option></layer></symbol>')


def single(symbol):
    return f'<renderer-v2 type="singleSymbol" symbollevels="0" enableorderby="0" forceraster="0"><symbols>{symbol}</symbols></renderer-v2>'


def categorized(attr, items, fallback):
    cats = "".join(f'<category symbol="{i}" value={quoteattr(v)} label={quoteattr(v)} render="true"/>' for i, (v, _) in enumerate(items))
    cats += f'<category symbol="{len(items)}" value="" label="other" render="true"/>'
    syms = "".join(marker(str(i), c + ",230", "circle", "2.6") for i, (_, c) in enumerate(items))
    syms += marker(str(len(items)), fallback, "circle", "2.6")
    return (f'<renderer-v2 type="categorizedSymbol" attr={quoteattr(attr)} symbollevels="0" enableorderby="0" forceraster="0">'
            f'<categories>{cats}</categories><symbols>{syms}</symbols></renderer-v2>')


def labels(field, size, color="0,0,0,255", min_scale=None):
    scale = f' scaleVisibility="1" scaleMin="0" scaleMax="{min_scale}"' if min_scale else ' scaleVisibility="0"'
    return (f'<labeling type="simple"><settings calloutType="simple"><text-style fieldName={quoteattr(field)} fontFamily="Noto Sans CJK SC" '
            f'fontSize="{size}" fontSizeUnit="Point" textColor="{color}" isExpression="0" fontWeight="50" textOpacity="1">'
            f'<text-buffer bufferDraw="1" bufferSize="0.8" bufferColor="255,255,255,255" bufferSizeUnits="MM"/></text-style>'
            f'<placement placement="1" dist="0" priority="5"/><rendering drawLabels="1"{scale} obstacle="1"/></settings></labeling>')


# (id, name, table, geometry column, key, type, qgis geometry, sql filter, renderer, labeling)
LAYERS = [
    ("township_areas", "乡镇 townships", "township_areas", "geom", "code", "MultiPolygon", "Polygon", "",
     single(fill("255,255,255,0", "60,60,60,255", "0.8", "no")), labels("name", 11, "40,40,40,255")),
    ("village_areas", "村（社区） villages", "village_areas", "geom", "code", "MultiPolygon", "Polygon", "",
     single(fill("255,255,255,0", "110,110,110,255", "0.35", "no")), labels("name", 8, "80,80,80,255", 100000)),
    ("grids", "网格 grids", "grids", "geom", "grid_code", "MultiPolygon", "Polygon", "valid_to IS NULL",
     single(fill("245,240,225,160", "170,170,170,255", "0.15")), labels("name", 7, "90,90,90,255", 25000)),
    ("patrol_tracks", "今日巡查轨迹 patrol tracks today", "patrol_tracks", "geom", "track_id", "LineString", "Line", "",
     single(line("43,140,190,220", "0.6")), labels("worker_name", 7, "43,100,150,255", 25000)),
    ("cameras", "摄像机 cameras", "cameras", "geom", "device_id", "Point", "Point", "",
     single(marker("0", "60,60,60,255", "triangle", "1.8")), ""),
    ("open_incidents", "未结事件 open incidents", "open_incidents", "geom", "incident_id", "Point", "Point", "",
     categorized("category", CATEGORY_COLORS, "68,68,68,230"), ""),
    ("overdue_task_points", "超期任务 overdue tasks", "overdue_task_points", "geom", "task_id", "Point", "Point", "",
     single(marker("0", "192,0,0,255", "star", "4.5", "255,255,255,255")), labels("minutes_late", 8, "192,0,0,255")),
]


def datasource(table, geom, key, gtype, sql):
    return (f"service='liandong' key='{key}' checkPrimaryKeyUnicity='0' srid=4326 type={gtype} "
            f'table="liandong"."{table}" ({geom}) sql={sql}')


def main():
    tree, layers = [], []
    # Drawn bottom-up: the layer tree lists the top layer first.
    for lid, name, table, geom, key, gtype, qgeom, sql, renderer, labeling in reversed(LAYERS):
        source = datasource(table, geom, key, gtype, sql)
        tree.append(f'<layer-tree-layer id="{lid}" name={quoteattr(name)} source={quoteattr(source)} providerKey="postgres" '
                    f'checked="Qt::Checked" expanded="1"><customproperties/></layer-tree-layer>')
    for lid, name, table, geom, key, gtype, qgeom, sql, renderer, labeling in LAYERS:
        source = datasource(table, geom, key, gtype, sql)
        layers.append(
            f'<maplayer type="vector" geometry="{qgeom}" wkbType="{gtype}" hasScaleBasedVisibilityFlag="0" '
            f'labelsEnabled="{1 if labeling else 0}" readOnly="1" autoRefreshEnabled="{1 if table in ("open_incidents", "overdue_task_points", "patrol_tracks") else 0}" '
            f'autoRefreshTime="60000" refreshOnNotifyEnabled="0">'
            f'<id>{lid}</id><datasource>{escape(source)}</datasource><layername>{escape(name)}</layername>'
            f'<srs>{CRS}</srs><provider encoding="UTF-8">postgres</provider>{renderer}{labeling}</maplayer>')
    order = "".join(f'<item>{l[0]}</item>' for l in reversed(LAYERS))
    project = f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis projectname="Liandong 综治联动" version="3.28.0-Firenze">
  <homePath path=""/>
  <title>Liandong 综治联动 — grids, villages, townships, patrol tracks, cameras, open incidents, overdue tasks</title>
  <projectCrs>{CRS}</projectCrs>
  <layer-tree-group>
    <customproperties/>
    {chr(10).join('    ' + t for t in tree).strip()}
    <custom-order enabled="0">{order}</custom-order>
  </layer-tree-group>
  <projectlayers>
{chr(10).join('    ' + l for l in layers)}
  </projectlayers>
  <layerorder>{"".join(f'<layer id="{l[0]}"/>' for l in reversed(LAYERS))}</layerorder>
  <properties><Measurement><DistanceUnits type="QString">meters</DistanceUnits><AreaUnits type="QString">m2</AreaUnits></Measurement></properties>
</qgis>
"""
    out = os.path.join(ROOT, "deploy", "qgis", "liandong.qgs")
    with open(out, "w", encoding="utf-8") as f:
        f.write(project)
    print(out)


if __name__ == "__main__":
    main()
