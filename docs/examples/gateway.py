#!/usr/bin/python3
"""A camera gateway for Liandong in a page of Python (pyzmq: apt-get install python3-zmq).

Sends camera alerts over the acknowledged path (liandongd's ingest.ack_bind, a ROUTER) and
resends every alert that is not answered, until each one is. An answer comes only after the
alert is committed, so a gateway that resends until answered loses nothing: a resent alert_id
has one effect ({"ok":true,"duplicate":true}). A refusal ({"ok":false,"error":"<reason>: ..."})
will not change by resending; it is kept in liandong.rejected_messages.

    docs/examples/gateway.py --ack tcp://127.0.0.1:7602 --device 62092200001320000001 \\
        --lon 95.7801 --lat 40.5203 --count 3
"""
import argparse, datetime, json, sys, time, zmq

CST = datetime.timezone(datetime.timedelta(hours=8))


def curve(socket, server_key, secret_key_file):
    """With liandongd's security.curve: make `socket` a CURVE client (before it connects).
    server_key: the daemon's NAME.pub file (or its 40 Z85 characters); secret_key_file: this
    peer's NAME.key from `liandongd keys generate` (its public key is in the daemon's peers file)."""
    if not server_key:
        return
    server = open(server_key).read().strip() if len(server_key) != 40 else server_key
    secret = open(secret_key_file).read().strip()
    socket.curve_serverkey = server.encode()
    socket.curve_secretkey = secret.encode()
    socket.curve_publickey = zmq.curve_public(secret.encode())


def alert(gateway, seq, device, lon, lat):
    """A liandong.alert.v1 body (schemas/json/alert.v1.schema.json): GB/T 28181 intrusion."""
    return {
        "schema": "liandong.alert.v1", "alert_id": "%s:%06d" % (gateway, seq), "gateway_id": gateway, "seq": seq,
        "device_id": device, "alarm_method": 5, "alarm_type": 6, "priority": 2,
        "observed_at": datetime.datetime.now(CST).isoformat(timespec="seconds"),
        "lon": lon, "lat": lat, "crs": "wgs84", "description": "example gateway",
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ack", default="tcp://127.0.0.1:7602",
                    help="liandongd ingest.ack_bind (comma-separated: every daemon of an active/standby pair)")
    ap.add_argument("--gateway", default="gw-python")
    ap.add_argument("--device", default="62092200001320000001", help="20-digit GB/T 28181 device id")
    ap.add_argument("--lon", type=float, required=True)
    ap.add_argument("--lat", type=float, required=True)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--resend-after", type=float, default=2.0, help="seconds before an unanswered alert is sent again")
    ap.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds")
    ap.add_argument("--curve-server-key", help="with security.curve: the daemon's public key file (NAME.pub)")
    ap.add_argument("--curve-key", help="with security.curve: this peer's secret key file (NAME.key)")
    args = ap.parse_args()

    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    # Only to a daemon that is up: a pair's standby binds its ack endpoint when it leads.
    socket.setsockopt(zmq.IMMEDIATE, 1)
    curve(socket, args.curve_server_key, args.curve_key)
    for endpoint in args.ack.split(","):
        socket.connect(endpoint.strip())
    pending = {}  # alert_id -> (frames, last sent)
    for seq in range(1, args.count + 1):
        body = alert(args.gateway, seq, args.device, args.lon, args.lat)
        pending[body["alert_id"]] = ([b"alert", json.dumps(body, ensure_ascii=False).encode()], 0.0)
    refused = 0
    deadline = time.monotonic() + args.timeout
    while pending and time.monotonic() < deadline:
        now = time.monotonic()
        for alert_id, (frames, sent) in list(pending.items()):
            if now - sent >= args.resend_after:
                try:
                    socket.send_multipart(frames, zmq.NOBLOCK)  # no connection up yet: resend later
                except zmq.Again:
                    pass
                pending[alert_id] = (frames, now)
        if socket.poll(200):
            answer = json.loads(socket.recv_multipart()[-1])
            if answer.get("id") in pending:
                del pending[answer["id"]]
                print(json.dumps(answer, ensure_ascii=False), flush=True)
                refused += 0 if answer["ok"] else 1
    if pending:
        print("unanswered after %.0f s: %s" % (args.timeout, ", ".join(sorted(pending))), file=sys.stderr)
        return 2
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
