#!/usr/bin/env python3
# Writes nvr_platform.xml and camera_platform.xml (SIPp out-of-call scenarios: an NVR of 70
# channels and a camera that cannot be armed, answering what liandong-gb28181 asks of them).
# Run it after changing what they answer: python3 tools/sipp/gen-platform.py
import os
HDR = '''<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
'''
OK200 = '''  <send>
    <![CDATA[
      SIP/2.0 %s
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]o[call_number]
      [last_Call-ID:]
      [last_CSeq:]
%s      Content-Length: 0

    ]]>
  </send>
'''
def reply(code="200 OK", extra=""):
    return OK200 % (code, extra)

def request(method, tag, cseq, body, extra="", to="<sip:[server]@[realm]>"):
    return '''  <send retrans="500">
    <![CDATA[
      %s sip:[server]@[realm] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]
      From: <sip:[device]@[realm]>;tag=%s
      To: %s
      Call-ID: [call_id]
      CSeq: %d %s
      Max-Forwards: 70
      User-Agent: SIPp GB28181 NVR
%s      Content-Type: Application/MANSCDP+xml
      Content-Length: [len]

%s
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="200"/>
''' % (method, tag, to, cseq, method, extra, "\n".join("      " + l for l in body.split("\n")))

def response(cmd, fields, encoding="GB2312"):
    return '''<?xml version="1.0" encoding="%s"?>
<Response>
<CmdType>%s</CmdType>
<SN>[$sn]</SN>
<DeviceID>[device]</DeviceID>
%s
</Response>''' % (encoding, cmd, fields)

def channel(k):
    return "[chprefix]%03d" % (k + 500)

def item(k, total):
    cid = "[camera]" if k == 1 else channel(k)
    place = ""
    if k == 0: place = "<Longitude>[lon]</Longitude><Latitude>[lat]</Latitude>"
    if k == total - 1: place = "<Longitude>100.0</Longitude><Latitude>30.0</Latitude>"
    status = "OFF" if k % 10 == 9 else "ON"
    return "<Item><DeviceID>%s</DeviceID><Name>通道%d</Name><Manufacturer>Hikvision</Manufacturer><ParentID>[device]</ParentID><CivilCode>620922</CivilCode><Status>%s</Status>%s</Item>" % (cid, k + 1, status, place)

def catalog(rng, total):
    items = "\n".join(item(k, total) for k in rng)
    return response("Catalog", '<SumNum>%d</SumNum>\n<DeviceList Num="%d">\n%s\n</DeviceList>' % (total, len(rng), items), "UTF-8")

BRANCH = '''  <nop>
    <action>
      <strcmp assign_to="c_%(n)s" variable="cmd" value="%(v)s"/>
      <test assign_to="is_%(n)s" variable="c_%(n)s" compare="equal" value="0"/>
    </action>
  </nop>
  <nop next="%(n)s" test="is_%(n)s"/>
'''

def ooc(name, doc, guard_answer, device_info, catalog_parts, subscribe_answer, notifies):
    out = HDR + "<!-- " + doc + " -->\n<scenario name=\"%s\">\n" % name
    out += '''  <recv request="MESSAGE" optional="true" next="message">
    <action>
      <ereg regexp="&lt;CmdType&gt;([A-Za-z]+)&lt;/CmdType&gt;" search_in="body" check_it="true" assign_to="cmd_all,cmd"/>
      <ereg regexp="&lt;SN&gt;([0-9]+)&lt;/SN&gt;" search_in="body" check_it="true" assign_to="sn_all,sn"/>
    </action>
  </recv>
  <recv request="SUBSCRIBE" next="subscribe">
    <action>
      <ereg regexp="([A-Za-z]+)" search_in="hdr" header="Event:" check_it="true" assign_to="event"/>
      <ereg regexp="tag=([^;&gt; ]+)" search_in="hdr" header="From:" check_it="true" assign_to="ftag_all,ftag"/>
    </action>
  </recv>
  <label id="message"/>
'''
    for n, v in [("catalog", "Catalog"), ("deviceinfo", "DeviceInfo"), ("control", "DeviceControl")]:
        out += BRANCH % {"n": n, "v": v}
    out += reply() + '  <nop next="end"/>\n'
    out += '  <label id="catalog"/>\n' + reply()
    for i, part in enumerate(catalog_parts):
        out += request("MESSAGE", "[pid]c%d[call_number]" % i, 20 + i, catalog(part, catalog_parts[-1][-1] + 1))
    out += '  <nop next="end"/>\n'
    out += '  <label id="deviceinfo"/>\n' + reply()
    if device_info:
        out += request("MESSAGE", "[pid]i[call_number]", 30, response("DeviceInfo", device_info))
    out += '  <nop next="end"/>\n'
    out += '  <label id="control"/>\n'
    if guard_answer is None:
        out += reply("501 Not Implemented")
    else:
        out += reply() + request("MESSAGE", "[pid]g[call_number]", 40, response("DeviceControl", "<Result>OK</Result>"))
    out += '  <nop next="end"/>\n'
    out += '  <label id="subscribe"/>\n' + reply(subscribe_answer, "      Expires: 3600\n      Contact: <sip:[device]@[local_ip]:[local_port]>\n" if subscribe_answer.startswith("200") else "")
    if notifies:
        out += (BRANCH % {"n": "alarmsub", "v": "presence"}).replace('variable="cmd"', 'variable="event"')
        to = "<sip:[server]@[realm]>;tag=[$ftag]"
        # A channel's change comes after the catalog that lists it (a device notifies changes).
        out += '  <pause milliseconds="1500"/>\n'
        out += request("NOTIFY", "[pid]o[call_number]", 50, notifies[1],
                       "      Event: Catalog\n      Subscription-State: active;expires=3600\n", to)
        out += '  <nop next="end"/>\n  <label id="alarmsub"/>\n'
        out += request("NOTIFY", "[pid]o[call_number]", 51, notifies[0],
                       "      Event: presence\n      Subscription-State: active;expires=3600\n", to)
    unused = "cmd_all,sn_all,ftag_all" + ("" if notifies else ",ftag,event")
    out += '  <label id="end"/>\n  <Reference variables="%s"/>\n</scenario>\n' % unused
    return out

ALARM = '''<?xml version="1.0" encoding="GB2312"?>
<Notify>
<CmdType>Alarm</CmdType>
<SN>9001</SN>
<DeviceID>[camera]</DeviceID>
<AlarmPriority>2</AlarmPriority>
<AlarmMethod>5</AlarmMethod>
<AlarmTime>[alarm_time]</AlarmTime>
<Info>
<AlarmType>2</AlarmType>
</Info>
</Notify>'''
CATALOG_NOTIFY = '''<?xml version="1.0" encoding="GB2312"?>
<Notify>
<CmdType>Catalog</CmdType>
<SN>9002</SN>
<DeviceID>[device]</DeviceID>
<SumNum>1</SumNum>
<DeviceList Num="1">
<Item><DeviceID>%s</DeviceID><Event>OFF</Event></Item>
</DeviceList>
</Notify>''' % channel(3)

d = os.path.dirname(os.path.abspath(__file__)) + "/"
import argparse
args = argparse.ArgumentParser(description="Writes the platform-side SIPp scenarios of tools/sipp.")
args.add_argument("--nvr-channels", type=int, default=70, help="channels of the NVR (default 70)")
args.add_argument("--out", help="write only the NVR's scenario, to this file")
args = args.parse_args()
n = args.nvr_channels
half = (n + 1) // 2 + 5 if n > 10 else n
parts = [range(0, min(half, n)), range(min(half, n), n)] if n > 10 else [range(0, n)]
open(args.out or d + "nvr_platform.xml", "w").write(ooc("gb28181 NVR answering its platform",
    "The platform side of an NVR of 70 channels (SIPp -oocsf, beside nvr.xml): each request of the\n"
    "     platform is an out-of-call call. Query Catalog: 200, then the answer in two MESSAGEs (SumNum 70;\n"
    "     channel 1 is the registry camera -key camera, channel 0 at -key lon/lat, channel 70 outside\n"
    "     every grid; channel ids -key chprefix (17 digits) and 500, 501, ...); Query DeviceInfo: 200 and its answer (Channel 70); DeviceControl: 200 and Result\n"
    "     OK; SUBSCRIBE: 200 (Expires 3600), then a NOTIFY in the dialog (alarms: an Alarm of the camera\n"
    "     channel; catalog: channel 4 OFF, 1.5 s later); anything else (the platform's Response to an alarm): 200.\n"
    "     Keys: device, realm, server, camera, lon, lat, alarm_time.",
    "OK", "<Result>OK</Result>\n<DeviceName>NVR-SIPp</DeviceName>\n<Manufacturer>Hikvision</Manufacturer>\n<Model>DS-7864N-K4</Model>\n<Firmware>V4.30.085</Firmware>\n<Channel>70</Channel>",
    parts, "200 OK", [ALARM, CATALOG_NOTIFY]).replace("70 channels", "%d channels" % n).replace("SumNum 70", "SumNum %d" % n).replace("Channel>70<", "Channel>%d<" % n).replace("channel 70 outside", "channel %d outside" % n))
if args.out:
    raise SystemExit(0)
open(d + "camera_platform.xml", "w").write(ooc("gb28181 camera without arming",
    "The platform side of a camera that cannot be armed (SIPp -oocsf, beside nvr.xml): DeviceControl\n"
    "     is answered 501 Not Implemented; Query Catalog: 200 and no answer; Query\n"
    "     DeviceInfo: 200 and its answer; SUBSCRIBE: 200 (Expires 3600), no NOTIFY; anything else: 200.\n"
    "     Keys: device, realm, server.",
    None, "<Result>OK</Result>\n<DeviceName>IPC-SIPp</DeviceName>\n<Manufacturer>Dahua</Manufacturer>\n<Model>IPC-HFW2431</Model>\n<Firmware>V2.800</Firmware>\n<Channel>1</Channel>",
    [], "200 OK", None).replace(reply() + '  <nop next="end"/>\n  <label id="deviceinfo"/>', reply() + '  <nop next="end"/>\n  <label id="deviceinfo"/>'))
