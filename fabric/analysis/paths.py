"""Which path each flow takes: ECMP's hash choice made readable ("h1->h3 and h2->h4 collided on
l1->s1"), and the collisions among flows that overlapped in time.

Why computed rather than observed: an OpenFlow select group on Open vSwitch hashes in the
datapath (`hash(sym_l4(0))`, then a recirculation that matches the hash's low bits), so neither
flow statistics nor datapath flow dumps name the 5-tuple that took a bucket. The hash itself is
OVS's `flow_hash_symmetric_l3l4` (lib/flow.c, murmur3 steps of lib/hash.h on machines whose OVS
is built without SSE4.2, as distribution packages are); `ovs_sym_l4_hash` reproduces it, and
`ovs-appctl ofproto/trace ... dp_hash=H` then lets the switch itself say which bucket (output
port) that hash selects, hop by hop (fabric.run.paths). Every transfer's source port is fixed by
(seed, id), or by (seed, connection key) for a transfer on a persistent connection
(traffic.plan.source_port), so the path is known for each planned flow. The emulation
test checks the prediction against the uplinks' byte counters.
"""
from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Iterable

M32 = 0xFFFFFFFF
IPPROTO_TCP = 6


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & M32


def _mhash_add(h: int, data: int) -> int:
    if data:
        data = (data * 0xCC9E2D51) & M32
        data = _rot(data, 15)
        data = (data * 0x1B873593) & M32
        h ^= data
    h = _rot(h, 13)
    return (h * 5 + 0xE6546B64) & M32


def _mhash_finish(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & M32
    return h ^ (h >> 16)


def ovs_sym_l4_hash(src_ip: str, dst_ip: str, sport: int, dport: int,
                    proto: int = IPPROTO_TCP, basis: int = 0) -> int:
    """OVS's dp_hash of an IPv4 TCP packet under `hash(sym_l4(basis))` (little-endian host):
    network-order fields read as host integers, as the C code does."""
    ips = int.from_bytes(ipaddress.IPv4Address(src_ip).packed, "little") ^ \
        int.from_bytes(ipaddress.IPv4Address(dst_ip).packed, "little")
    h = _mhash_add(basis, ips)
    h = _mhash_add(h, proto)
    if proto == IPPROTO_TCP:
        ports = int.from_bytes((sport ^ dport).to_bytes(2, "big"), "little")
        h = _mhash_add(h, ports)
    return _mhash_finish(h ^ basis)


_OUTPUT = re.compile(r"\boutput:(\d+)\b")


def trace_output_port(text: str) -> int | None:
    """The OpenFlow port an `ofproto/trace` sends the packet to (the last output: action of the
    OpenFlow part), or None when it is dropped."""
    head = text.split("\nFinal flow:", 1)[0]
    ports = _OUTPUT.findall(head)
    return int(ports[-1]) if ports else None


@dataclass(frozen=True)
class FlowPath:
    """One planned transfer's path through the fabric, node by node (`via` "spray" when the
    policy spreads its packets over every path, "" when unknown)."""
    flow_id: int
    src: str
    dst: str
    sport: int
    dport: int
    path: tuple[str, ...]
    via: str = "hash"

    def hops(self) -> list[tuple[str, str]]:
        return list(zip(self.path, self.path[1:]))

    def text(self) -> str:
        return "->".join(self.path) if self.path else self.via


@dataclass(frozen=True)
class Collision:
    """Flows of two source->destination pairs (or two flows of one pair) that were in flight
    together on one switch-to-switch direction: how many flow pairs overlapped, for how long."""
    src: str
    dst: str
    first: str        # "h1->h3"
    second: str
    pairs: int
    overlap_s: float
    flows: tuple[int, ...]

    def text(self) -> str:
        return (f"{self.first} and {self.second} collided on {self.src}->{self.dst} "
                f"({self.pairs} flow pair{'s' if self.pairs > 1 else ''}, "
                f"{self.overlap_s:.2f} s together)")


def collisions(paths: Iterable[FlowPath], spans: dict[int, tuple[float, float]],
               fabric_nodes: set[str]) -> list[Collision]:
    """Flows that shared a fabric direction while both were in flight, by direction and pair
    of flow names, busiest first.

    `spans` maps flow id -> (start, end) in one clock; flows without a span are left out. Only
    hops between two switches of `fabric_nodes` count (ECMP's choice never concerns a host link).
    """
    by_dir: dict[tuple[str, str], list[FlowPath]] = {}
    for p in paths:
        if p.flow_id not in spans:
            continue
        for a, b in p.hops():
            if a in fabric_nodes and b in fabric_nodes:
                by_dir.setdefault((a, b), []).append(p)
    found: dict[tuple[str, str, str, str], list[Any]] = {}
    for (a, b), ps in sorted(by_dir.items()):
        for i, p in enumerate(ps):
            for q in ps[i + 1:]:
                if (p.src, p.dst, p.sport, p.dport) == (q.src, q.dst, q.sport, q.dport):
                    continue  # one connection: its messages queue behind each other
                (s1, e1), (s2, e2) = spans[p.flow_id], spans[q.flow_id]
                overlap = min(e1, e2) - max(s1, s2)
                if overlap <= 0:
                    continue
                x, y = sorted((f"{p.src}->{p.dst}", f"{q.src}->{q.dst}"))
                acc = found.setdefault((a, b, x, y), [0, 0.0, set()])
                acc[0] += 1
                acc[1] += overlap
                acc[2].update((p.flow_id, q.flow_id))
    out = [Collision(a, b, x, y, n, t, tuple(sorted(ids)))
           for (a, b, x, y), (n, t, ids) in found.items()]
    return sorted(out, key=lambda c: (-c.overlap_s, c.src, c.dst, c.first, c.second))


_MEGAFLOW = re.compile(r"^Megaflow: (.*)$", re.M)
_DP_HASH = re.compile(r"dp_hash=(0x[0-9a-f]+)(?:/(0x[0-9a-f]+))?")
# megaflow fields that let a trace's result stand for every flow to the same destination
# through the same port with the same hash bits (ECMP's own match fields)
CACHEABLE = frozenset({"recirc_id", "dp_hash", "eth", "ip", "tcp", "in_port", "nw_dst",
                       "nw_frag", "dl_type"})


def trace_hash_mask(text: str) -> int | None:
    """The dp_hash bits a trace's megaflow depends on (0 when none); None when the megaflow
    also depends on fields other than ECMP's own (then the result is not shared)."""
    m = _MEGAFLOW.search(text)
    if m is None:
        return None
    names = {f.split("=", 1)[0] for f in m.group(1).split(",")}
    if not names <= CACHEABLE:
        return None
    d = _DP_HASH.search(m.group(1))
    if d is None:
        return 0
    return int(d.group(2), 16) if d.group(2) else 0xFFFFFFFF


MOVES_FLOWS = frozenset({"adaptive"})   # policies whose flows leave their traced path
PATH_COLUMNS = ("flow_id", "src", "dst", "sport", "dport", "via", "path")


def write_paths(paths: Iterable[FlowPath], path: Path) -> None:
    """paths.csv: one row per flow; `path` is the node list joined by '>' (empty: sprayed)."""
    import csv
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(PATH_COLUMNS)
        for p in paths:
            w.writerow([p.flow_id, p.src, p.dst, p.sport, p.dport, p.via, ">".join(p.path)])


def read_paths(path: Path) -> list[FlowPath]:
    import csv
    out = []
    try:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                out.append(FlowPath(int(row["flow_id"]), row["src"], row["dst"], int(row["sport"]),
                                    int(row["dport"]), tuple(filter(None, row["path"].split(">"))),
                                    row["via"]))
    except (OSError, KeyError, ValueError):
        return out
    return out


def sent_ports(agents_dir: Path) -> dict[int, int]:
    """Flow id -> the TCP source port its sender really used (agents' <host>.send.csv)."""
    import csv
    out: dict[int, int] = {}
    for f in sorted(Path(agents_dir).glob("*.send.csv")):
        try:
            with open(f, newline="") as fh:
                for row in csv.DictReader(fh):
                    if row.get("sport", "").isdigit() and row.get("id", "").isdigit():
                        out[int(row["id"])] = int(row["sport"])
        except OSError:
            continue
    return out


def run_collisions(paths: Iterable[FlowPath], records: Iterable[Any], agents_dir: Path,
                   fabric_nodes: set[str], policy: str = "ecmp",
                   until: float | None = None) -> list[Collision]:
    """Collisions of a run's complete flows, leaving out any flow whose sender had to use
    another source port than the traced one (its hash, hence its path, is then unknown), and
    every flow still running at `until` (the first link failure: the controller re-routes,
    the traced paths no longer hold). None under a policy that moves flows after the trace
    (`adaptive`: moves.csv says where)."""
    if policy in MOVES_FLOWS:
        return []
    used = sent_ports(agents_dir)
    spans = {r.flow_id: (r.start, r.end) for r in records
             if r.complete and r.start is not None and r.end is not None
             and (until is None or r.end <= until)}
    known = [p for p in paths if used.get(p.flow_id, p.sport) == p.sport and p.via == "hash"]
    return collisions(known, spans, fabric_nodes)
