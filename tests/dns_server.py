#!/usr/bin/env python3
"""A tiny UDP DNS server for the resolver tests (python3 standard library only).

It listens on 127.0.0.1 only.  Port 0 picks a free port; the port actually
bound is written to --port-file atomically (temp file + rename), so a
reader that sees the file sees the whole number.

Zone: a JSON object (--zone FILE or --zone-json TEXT), names lower case
without the trailing dot:

    {
      "dual.test":  {"A": ["192.0.2.1"], "AAAA": ["2001:db8::1"], "ttl": 60},
      "alias.test": {"CNAME": "dual.test", "ttl": 30},
      "nx.test":    {"nxdomain": true},
      "sf.test":    {"servfail": true},
      "hang.test":  {"timeout": true},          # never answers
      "half.test":  {"A": ["192.0.2.9"], "timeout": ["AAAA"]},  # only AAAA hangs
      "spoof.test": {"A": ["192.0.2.7"], "mismatch_first": true},
      "tc.test":    {"A": ["192.0.2.8"], "truncate": true},
      "slow.test":  {"A": ["192.0.2.6"], "delay_ms": 200}
    }

  - A / AAAA: address lists; "ttl" (default 60) applies to every record.
  - CNAME: answered with the alias record, followed by the target's
    records when the target is in the zone (the chain is followed).
  - nxdomain / servfail: that RCODE, no records.
  - timeout: true (every type) or a list of types that are never answered.
  - mismatch_first: first sends an answer with a wrong id (and address
    6.6.6.6), then one for another name, then the right answer.
  - truncate: answers with TC=1 and no records.
  - delay_ms: answers that much later (the server keeps serving meanwhile).
  - A name in the zone without records of the asked type: NOERROR, empty.
  - A name not in the zone: NXDOMAIN.

Stats: every query received increments a counter "name/TYPE" (e.g.
"dual.test/A"); after each query, before any answer is sent, the counters
are written as a JSON object to --stats-file (atomically).  So once a
client holds an answer, the file already counts the query that got it.

--parent-pid PID: exit when that process is gone (checked every 200 ms),
so a killed test run never leaves the server behind.  SIGTERM and SIGINT
exit cleanly.
"""

import argparse
import heapq
import ipaddress
import json
import os
import select
import signal
import socket
import struct
import sys
import time

TYPE_A, TYPE_CNAME, TYPE_AAAA = 1, 5, 28
TYPE_NAMES = {TYPE_A: "A", TYPE_CNAME: "CNAME", TYPE_AAAA: "AAAA"}
CLASS_IN = 1
FLAG_QR, FLAG_TC, FLAG_RD, FLAG_RA = 0x8000, 0x0200, 0x0100, 0x0080
RCODE_SERVFAIL, RCODE_NXDOMAIN = 2, 3
CNAME_MAX = 8


def write_atomic(path, text):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode("ascii")
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def parse_query(data):
    """(id, flags, name, qtype, qclass, question bytes) or None."""
    if len(data) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", data[:6])
    if flags & FLAG_QR or qd != 1:
        return None
    pos, labels = 12, []
    while True:
        if pos >= len(data):
            return None
        n = data[pos]
        if n == 0:
            pos += 1
            break
        if n & 0xC0 or pos + 1 + n > len(data):
            return None  # queries are never compressed
        labels.append(data[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    if pos + 4 > len(data):
        return None
    qtype, qclass = struct.unpack("!HH", data[pos:pos + 4])
    return qid, flags, ".".join(labels), qtype, qclass, data[12:pos + 4]


def rr(owner, rtype, ttl, rdata):
    return owner + struct.pack("!HHIH", rtype, CLASS_IN, ttl, len(rdata)) + rdata


def build_answer(qid, flags, question, rcode, records, tc=False):
    f = FLAG_QR | FLAG_RA | (flags & FLAG_RD) | rcode | (FLAG_TC if tc else 0)
    return struct.pack("!HHHHHH", qid, f, 1, len(records), 0, 0) + question + b"".join(records)


class Server:
    def __init__(self, zone, stats_file):
        self.zone = {k.lower().rstrip("."): v for k, v in zone.items()}
        self.stats_file = stats_file
        self.counts = {}
        self.pending = []  # heap of (due, seq, payload, addr)
        self.seq = 0

    def count(self, name, qtype):
        key = "%s/%s" % (name, TYPE_NAMES.get(qtype, str(qtype)))
        self.counts[key] = self.counts.get(key, 0) + 1
        if self.stats_file:
            write_atomic(self.stats_file, json.dumps(self.counts, sort_keys=True))

    def records(self, name, qtype):
        """Answer records for name/qtype, following CNAMEs in the zone.
        The question name is owner via a compression pointer to offset 12."""
        out, owner, cur = [], b"\xc0\x0c", name
        for _ in range(CNAME_MAX + 1):
            entry = self.zone.get(cur)
            if entry is None:
                break
            ttl = int(entry.get("ttl", 60))
            if "CNAME" in entry:
                target = entry["CNAME"].lower().rstrip(".")
                out.append(rr(owner, TYPE_CNAME, ttl, encode_name(target)))
                owner, cur = encode_name(target), target
                continue
            key = TYPE_NAMES.get(qtype)
            for a in entry.get(key, []) if key in ("A", "AAAA") else []:
                out.append(rr(owner, qtype, ttl, ipaddress.ip_address(a).packed))
            break
        return out

    def handle(self, sock, data, addr):
        q = parse_query(data)
        if q is None:
            return
        qid, flags, qname, qtype, qclass, question = q
        name = qname.lower().rstrip(".")
        self.count(name, qtype)
        entry = self.zone.get(name)
        replies = []
        if entry is None:
            replies.append(build_answer(qid, flags, question, RCODE_NXDOMAIN, []))
        else:
            hang = entry.get("timeout", False)
            if hang is True or (isinstance(hang, list) and TYPE_NAMES.get(qtype) in hang):
                return
            if entry.get("nxdomain"):
                replies.append(build_answer(qid, flags, question, RCODE_NXDOMAIN, []))
            elif entry.get("servfail"):
                replies.append(build_answer(qid, flags, question, RCODE_SERVFAIL, []))
            elif entry.get("truncate"):
                replies.append(build_answer(qid, flags, question, 0, [], tc=True))
            else:
                if entry.get("mismatch_first") and qtype in (TYPE_A, TYPE_AAAA):
                    bogus = "6.6.6.6" if qtype == TYPE_A else "6666::6"
                    fake = [rr(b"\xc0\x0c", qtype, 60, ipaddress.ip_address(bogus).packed)]
                    replies.append(build_answer(qid ^ 0xFFFF, flags, question, 0, fake))
                    other = encode_name("other." + name) + question[-4:]
                    replies.append(build_answer(qid, flags, other, 0, fake))
                replies.append(build_answer(qid, flags, question, 0, self.records(name, qtype)))
        delay = float(entry.get("delay_ms", 0)) / 1000.0 if entry else 0.0
        for r in replies:
            if delay > 0:
                self.seq += 1
                heapq.heappush(self.pending, (time.monotonic() + delay, self.seq, r, addr))
            else:
                sock.sendto(r, addr)

    def flush_due(self, sock):
        now = time.monotonic()
        while self.pending and self.pending[0][0] <= now:
            _, _, payload, addr = heapq.heappop(self.pending)
            sock.sendto(payload, addr)


def parent_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--zone", help="JSON zone file")
    ap.add_argument("--zone-json", help="JSON zone text")
    ap.add_argument("--stats-file")
    ap.add_argument("--parent-pid", type=int)
    args = ap.parse_args()

    zone = {}
    if args.zone:
        with open(args.zone) as f:
            zone.update(json.load(f))
    if args.zone_json:
        zone.update(json.loads(args.zone_json))

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    srv = Server(zone, args.stats_file)
    if args.stats_file:
        write_atomic(args.stats_file, "{}")
    if args.port_file:
        write_atomic(args.port_file, "%d\n" % port)

    next_parent_check = 0.0
    while True:
        now = time.monotonic()
        if args.parent_pid and now >= next_parent_check:
            if not parent_alive(args.parent_pid):
                return 0
            next_parent_check = now + 0.2
        wait = 0.2
        if srv.pending:
            wait = max(0.0, min(wait, srv.pending[0][0] - now))
        readable, _, _ = select.select([sock], [], [], wait)
        if readable:
            data, addr = sock.recvfrom(4096)
            srv.handle(sock, data, addr)
        srv.flush_due(sock)


if __name__ == "__main__":
    sys.exit(main())
