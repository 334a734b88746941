#!/usr/bin/python3
"""A dispatcher for Liandong in a page of Python (pyzmq: apt-get install python3-zmq).

Receives the tasks of one division (a SUB on liandongd's feed.bind with a topic prefix), misses
none (every message has a global seq; the heartbeat on topic `hb` says the head, and whatever is
missing - also from before it started, with --since - is fetched from the replay ROUTER at
feed.replay_bind), and accepts each new task on the updates ROUTER (updates.bind), resending an
update until it is answered (the same update_id has one effect and the same answer).

    docs/examples/dispatcher.py --feed tcp://127.0.0.1:7611 --replay tcp://127.0.0.1:7612 \\
        --updates tcp://127.0.0.1:7621 --prefix task.620922102 --since 0 --max-tasks 1

With an active/standby pair (ha.enabled), name every daemon, comma-separated, in each option: only
the leader binds them, and a request that went to a leader as it died is sent again.
"""
import argparse, datetime, json, sys, time, uuid, zmq

CST = datetime.timezone(datetime.timedelta(hours=8))
NEW_TASK_KINDS = {"verify", "dispatch", "joint_dispatch", "escalation"}


def request(socket, frames, timeout):
    """Sends on a DEALER and waits for the answer, resending every 2 s until `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        socket.send_multipart(frames)
        if socket.poll(2000):
            return socket.recv_multipart()
    raise TimeoutError("no answer from liandongd")


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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--feed", default="tcp://127.0.0.1:7611")
    ap.add_argument("--replay", default="tcp://127.0.0.1:7612")
    ap.add_argument("--updates", default="tcp://127.0.0.1:7621")
    ap.add_argument("--prefix", default="task.", help="topic prefix: task.<division code>")
    ap.add_argument("--since", type=int, default=None, help="fetch every message after this seq first")
    ap.add_argument("--actor", default="python-dispatcher")
    ap.add_argument("--max-tasks", type=int, default=0, help="exit after accepting this many tasks (0: run on)")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--curve-server-key", help="with security.curve: the daemon's public key file (NAME.pub)")
    ap.add_argument("--curve-key", help="with security.curve: this peer's secret key file (NAME.key)")
    args = ap.parse_args()

    context = zmq.Context.instance()
    feed = context.socket(zmq.SUB)
    curve(feed, args.curve_server_key, args.curve_key)
    for topic in (args.prefix, "hb"):
        feed.setsockopt(zmq.SUBSCRIBE, topic.encode())
    for endpoint in args.feed.split(","):
        feed.connect(endpoint.strip())
    replay, updates = context.socket(zmq.DEALER), context.socket(zmq.DEALER)
    for s, endpoints in ((replay, args.replay), (updates, args.updates)):
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.IMMEDIATE, 1)  # only to the daemon that leads (a standby binds nothing)
        curve(s, args.curve_server_key, args.curve_key)
        for endpoint in endpoints.split(","):
            s.connect(endpoint.strip())

    last = args.since  # highest seq handled; None: from whatever arrives first
    accepted = set()

    def handle(task):
        nonlocal last
        last = task["seq"] if last is None else max(last, task["seq"])
        if task["kind"] not in NEW_TASK_KINDS or task["task_id"] in accepted or task["state"] != "open":
            return
        update = {"schema": "liandong.task_update.v1", "update_id": str(uuid.uuid4()), "task_id": task["task_id"],
                  "action": "accept", "actor": args.actor,
                  "at": datetime.datetime.now(CST).isoformat(timespec="seconds")}
        answer = json.loads(request(updates, [json.dumps(update).encode()], args.timeout)[-1])
        print(json.dumps({"seq": task["seq"], "kind": task["kind"], "task_id": task["task_id"], "answer": answer}),
              flush=True)
        if answer["ok"]:
            accepted.add(task["task_id"])

    def catch_up(head):
        """Fetches every message after `last` up to `head` from the replay ROUTER."""
        nonlocal last
        more = True
        while more and last is not None and last < head:
            ask = {"since": last, "prefix": args.prefix, "limit": 1000}
            *messages, end = request(replay, [json.dumps(ask).encode()], args.timeout)
            end = json.loads(end)
            if "error" in end:
                raise RuntimeError("replay refused: " + end["error"])
            for body in messages:
                handle(json.loads(body))
            more = end["more"]
            if not more:
                last = max(last, end["head"])  # nothing else of ours up to the head

    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline and not (args.max_tasks and len(accepted) >= args.max_tasks):
        if not feed.poll(500):
            continue
        topic, body = feed.recv_multipart()
        message = json.loads(body)
        if topic == b"hb":
            catch_up(message["head"])
        elif last is None or message["seq"] > last:
            catch_up(message["seq"] - 1)  # anything missed before this one first
            handle(message)
    return 0 if not args.max_tasks or len(accepted) >= args.max_tasks else 2


if __name__ == "__main__":
    sys.exit(main())
