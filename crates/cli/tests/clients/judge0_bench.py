"""Speed of issue 12: the judge0 SDK's run() of hello world against livexec, p50 over N calls,
beside the same program's bare native run (POST /code-sessions/:id/run?wait=true).

Usage: judge0_bench.py BASE_URL [N]. The SDK polls every 0.1 s, so a p50 near 0.1 s above the
bare run means the first poll found the result done.
"""
import json
import statistics
import sys
import time
import urllib.request

import judge0

base = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
code = "print('hello, world')"
client = judge0.Client(base, headers={})


def post(path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def bare():
    session = post("/code-sessions", {"language": "python", "templateCode": code})["session_id"]
    t = time.perf_counter()
    out = post(f"/code-sessions/{session}/run?wait=true", {})
    assert out["stdout"] == "hello, world\n", out
    return time.perf_counter() - t


def sdk():
    t = time.perf_counter()
    r = judge0.run(client=client, source_code=code, language=judge0.PYTHON)
    assert r.stdout == "hello, world\n", r.stdout
    return time.perf_counter() - t


sdk()
bare()
rows = {"bare native run (wait=true)": [bare() for _ in range(n)], "judge0 SDK run()": [sdk() for _ in range(n)]}
for name, xs in rows.items():
    xs.sort()
    print(f"{name:30} p50 {statistics.median(xs) * 1000:7.1f} ms   p90 {xs[int(len(xs) * 0.9)] * 1000:7.1f} ms   n={len(xs)}")
