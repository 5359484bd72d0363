#!/usr/bin/env python3
"""Writes the hand-made seeds of fuzz/corpus/<target>/ (seed-* files):
the repository's scenarios (with and without --set lines), the templates
they use, Engine.IO / Socket.IO frames of the protocol documents, HTTP/1.1
responses in several framings. The real result files (summary.json,
metrics.hlog) are copied in by fuzz/seeds/real-run.sh. Run from anywhere;
rerunning rewrites the same files."""
import glob
import os
import re

FUZZ = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(FUZZ)


def write(target, name, data):
    d = os.path.join(FUZZ, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def scenario(path):
    """A scenario file without its comment lines and blank lines (the
    target parses the rest; comments only slow each execution)."""
    lines = open(path).read().splitlines()
    return "".join(l + "\n" for l in lines if l.strip() and not l.lstrip().startswith("#"))


# scenario_load: every scenario file, and a few with --set lines first.
scenarios = sorted(glob.glob(os.path.join(REPO, "scenarios", "*.toml")))
for path in scenarios:
    name = os.path.basename(path)[:-5]
    write("scenario_load", name, scenario(path))
sets = {
    "quickstart": ["seed=7", "phases.0.duration=1s", "phases.steady.duration=2s",
                   "http.timeout=2s", 'slo."http.latency.p95"=< 300ms', "users.0.think=1s",
                   "users.browser.weight=2"],
    "black-friday": ["phases.1.duration=30s", "http.max_in_flight=200"],
    "connection-storm": ["phases.storm.agents.connected=10000"],
    "ci-gate": ["target.api=\"http://127.0.0.1:8080\"", "users.0.steps.0.timeout=1s",
                "compare.p95=5%"],
}
for name, lines in sets.items():
    text = "".join("--set %s\n" % l for l in lines)
    write("scenario_load", name + "-set", text + scenario(os.path.join(REPO, "scenarios", name + ".toml")))

# template: the templates of the scenarios, the documented forms, and JSON
# bodies (a TOML document with key `v`).
templates = set()
for path in scenarios:
    for m in re.findall(r'"([^"\n]*\{\{[^"\n]*)"', open(path).read()):
        templates.add(m)
templates |= {
    '{{ "{{" }} literal }}', "{{ 'x\\n\\t' }}", '{{ pick("a", "b", \'c\') }}',
    "{{ feed.sku }}-{{ feed.products.name }}-{{ feed.accounts.user }}",
    "{{ now_ms }} {{ now_ms() }} {{ iteration }} {{ agent.id }}", "{{ env.HOME }}",
    "{{ cart }}/{{ token }}", "{{ rand(-5, 5) }}", "{{ unknown }}", "a }} b {{",
}
for i, t in enumerate(sorted(templates)):
    write("template", "t%02d" % i, t)
bodies = [
    'v = { user = "op-{{ vu.id }}", password = "secret", n = "{{ rand(1, 9) }}" }',
    'v = [1, 2.5, true, "{{ uuid() }}", { a = "{{ cart }}", b = [] }]',
    'v = "{{ feed.name }}"',
    'v = { at = 1979-05-27T07:32:00Z, f = -0.0, s = "\\u0001\\"{{ token }}\\\\" }',
    'v = "{{ iteration }}"',
]
for i, b in enumerate(bodies):
    write("template", "json%d" % i, b)

# socketio_decode: one connection's frames, `\n` between them, `b` + bytes
# for a binary frame.
conns = {
    "handshake": ['0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}',
                  '40{"sid":"wZX3oN0bSVIhsaknAAAI"}', "2", "2probe", '42["command",{"op":"update"}]', "6", "1"],
    "namespaces": ['40/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}', "40/admin", "40/,", '42/admin,17["status",{"load":3}]',
                   '43/admin,13["bar"]', "41/admin,", '44{"message":"Not authorized","data":{"a":1}}', '44"v4 error"'],
    "binary": ['451-["baz",{"_placeholder":true,"num":0}]', "b\x01\x02\x03",
               '452-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', "b", "bxyz",
               '461-15["bar",{"_placeholder":true,"num":0}]', "b\xff\x00"],
    "errors": ['0{"sid":"","pingInterval":1,"pingTimeout":1}', '0{"sid":"a","pingInterval":1,"pingTimeout":1,"maxPayload":8}',
               '42["longer than eight bytes"]', "7", "4x", '451-["a",{"_placeholder":true,"num":1}]', "bzz",
               '42[1,2]', "43", '4218446744073709551616["x"]', "45300-[]"],
}
for name, frames in conns.items():
    write("socketio_decode", name, "\n".join(frames).encode("latin-1"))

# h1_response: flags byte (1 keep, 2 HEAD first, 4 Pending reads), chunk
# seed byte, then the server's bytes.
responses = {
    "length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
    "keepalive": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
    "eof": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
    "http10": b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabcHTTP/1.0 200 OK\r\n\r\nrest",
    "interim": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
    "head": b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
    "switching": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    "bad-length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "te-and-length": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "lf-only": b"HTTP/1.1 500 Internal Server Error\nContent-Length: 4\nConnection: keep-alive\n\nfail",
}
for i, (name, raw) in enumerate(responses.items()):
    flags = [1, 3, 5, 0, 1, 7, 2, 1, 1, 5, 4][i]
    write("h1_response", name, bytes([flags, (i * 37 + 11) % 256]) + raw)
