#!/usr/bin/python3
"""A resident's app backend for Liandong in a page of Python (standard library only).

Speaks Open311 GeoReport v2 to liandong-open311: lists the services, files a request (a position
in GCJ-02, as a mini-program's map SDK gives it), follows it and, once it is closed, rates the
outcome. A POST is answered only after liandongd has committed the request; if the answer does
not come (a 503, a timeout, a lost connection) send the same POST again with the same
Idempotency-Key: it gets the same service_request_id, never a second request.

    docs/examples/open311_client.py --url http://127.0.0.1:8311/open311/v2 --api-key KEY \\
        --service dispute --lat 40.5214 --long 95.7893 --crs gcj02 \\
        --description "邻里因宅基地争吵" --follow 60 --rate 2
"""
import argparse, json, sys, time, urllib.error, urllib.parse, urllib.request, uuid


def call(method, url, fields=None, headers=None, attempts=5):
    """One Open311 call; returns (HTTP status, parsed JSON). Retries what may succeed later."""
    data = urllib.parse.urlencode(fields).encode() if method == "POST" else None
    if method == "GET" and fields:
        url += "?" + urllib.parse.urlencode(fields)
    for attempt in range(attempts):
        request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
        if data is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as e:
            body = json.loads(e.read() or b"[]")
            if e.code == 429:  # over the app's rate: wait as told
                time.sleep(int(e.headers.get("Retry-After", "1")))
            elif e.code == 503 and attempt + 1 < attempts:  # liandongd or the database was slow: again
                time.sleep(1)
            else:
                return e.code, body
        except (urllib.error.URLError, TimeoutError):
            if attempt + 1 == attempts:
                raise
            time.sleep(1)
    return 503, [{"code": 503, "description": "no answer"}]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8311/open311/v2")
    p.add_argument("--api-key", required=True)
    p.add_argument("--service", default="dispute")
    p.add_argument("--lat", type=float, required=True)
    p.add_argument("--long", type=float, required=True)
    p.add_argument("--crs", default="gcj02", choices=["wgs84", "gcj02", "bd09"])
    p.add_argument("--description", default="")
    p.add_argument("--phone", default="")
    p.add_argument("--follow", type=float, default=0, help="seconds to follow the request until it is closed")
    p.add_argument("--rate", type=int, default=0, help="once closed, rate the outcome 1-5")
    a = p.parse_args()

    status, services = call("GET", a.url + "/services.json")
    if status != 200:
        sys.exit(f"services: {status} {services}")
    print(json.dumps({"services": [s["service_code"] for s in services]}, ensure_ascii=False))

    # One key per tap: a retry of this POST (even after a restart of this program) is the same request.
    key = str(uuid.uuid4())
    fields = {"api_key": a.api_key, "service_code": a.service, "lat": a.lat, "long": a.long, "crs": a.crs,
              "description": a.description}
    if a.phone:
        fields["phone"] = a.phone
    status, filed = call("POST", a.url + "/requests.json", fields, {"Idempotency-Key": key})
    if status != 200:
        sys.exit(f"filing refused: {status} {filed[0]['description'] if filed else ''}")
    request_id = filed[0]["service_request_id"]
    print(json.dumps({"filed": request_id}, ensure_ascii=False))

    deadline = time.time() + a.follow
    last = None
    while True:
        status, found = call("GET", a.url + f"/requests/{request_id}.json", {"api_key": a.api_key})
        if status != 200:
            sys.exit(f"status: {status} {found}")
        r = found[0]
        seen = (r["status"], r["agency_responsible"], r["status_notes"])
        if seen != last:
            print(json.dumps({k: r[k] for k in ("status", "agency_responsible", "expected_datetime", "status_notes")},
                             ensure_ascii=False), flush=True)
            last = seen
        if r["status"] == "closed" or time.time() >= deadline:
            break
        time.sleep(1)

    if a.rate and last[0] == "closed":
        status, rated = call("POST", a.url + f"/requests/{request_id}/feedback.json",
                             {"api_key": a.api_key, "rating": a.rate}, {"Idempotency-Key": key + "-rating"})
        if status != 200:
            sys.exit(f"rating refused: {status} {rated}")
        print(json.dumps({"rated": a.rate, "reopened": rated[0]["reopened"]}), flush=True)


if __name__ == "__main__":
    main()
