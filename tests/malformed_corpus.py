"""A corpus of malformed experiment files and command lines, each with the key its error must name.

Every case must be rejected cleanly by the `fabric` command: exit code 2, one line on stderr per
error (`fabric: error in <key>: <message>`), the exact key path named, the values printed as
Python reprs (never raw control characters), nothing built. Cases are data: `Case.argv` holds the
command line with placeholders `{spec}` (the case's experiment file) and `{dir}` (a scratch
directory holding `Case.files`); `Case.doc` is the experiment as a dict (values of type `Raw`
are written verbatim, e.g. `inf`, a 400-digit integer) or `Case.text` the exact file bytes.
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Raw:
    """A TOML value written as is."""
    text: str


BIG = Raw("1" + "0" * 400)          # a 401-digit integer: OverflowError when made a float
HUGE = Raw("9" * 5000)              # over Python's 4300-digit int parsing limit (tomllib raises)


@dataclass(frozen=True)
class Case:
    id: str
    key: str                                    # the key path the first error line must name
    doc: dict[str, Any] | None = None           # experiment as a dict (None: `text` is used)
    text: bytes | None = None                   # or the experiment file's exact bytes
    files: dict[str, bytes | str] = field(default_factory=dict)  # {dir}/name -> content
    argv: tuple[str, ...] = ("check", "{spec}")
    keys: tuple[str, ...] = ()                  # several errors: every key, in order
    forbid: tuple[str, ...] = ()                # substrings the error output must not contain


# ---------------------------------------------------------------- TOML writing

def _value(v: Any) -> str:
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_k(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def _k(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else json.dumps(key)


def to_toml(doc: dict[str, Any]) -> str:
    """Top-level scalars, then tables, then arrays of tables (enough for experiment files)."""
    lines: list[str] = []
    tables = []
    for k, v in doc.items():
        is_table = isinstance(v, dict) and k in ("run", "scale")
        is_array = (isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)
                    and k in ("fabric", "workload", "failure"))
        if is_table or is_array:
            tables.append((k, v))
        else:
            lines.append(f"{_k(k)} = {_value(v)}")
    for k, v in tables:
        for t in (v if isinstance(v, list) else [v]):
            lines.append(f"\n[[{k}]]" if isinstance(v, list) else f"\n[{k}]")
            lines += [f"{_k(a)} = {_value(b)}" for a, b in t.items()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- base documents

LEAFSPINE = {"kind": "leafspine", "spines": 2, "leaves": 2, "hosts_per_leaf": 2}
DDC = {"kind": "ddc", "ncps": 2, "ncfs": 2, "hosts_per_ncp": 2}
SINGLE = {"kind": "single", "hosts": 4}
ALLREDUCE = {"kind": "allreduce", "size_bytes": "1MB"}
STRIDE = {"kind": "stride", "size_bytes": "1MB", "stride": 1}
FLOWS = {"kind": "flows", "flows": [{"src": "h1", "dst": "h3", "size_bytes": 1000},
                                    {"src": "h2", "dst": "h4", "size_bytes": 1000},
                                    {"src": "h3", "dst": "h1", "size_bytes": 1000}]}
INFERENCE = {"kind": "inference", "clients": ["h1"], "prefill": ["h2"], "decode": ["h3"],
             "requests": 3}
BACKGROUND = {"kind": "background", "load": 0.3, "duration_s": 1.0}
ALLTOALL = {"kind": "alltoall", "size_bytes": "1MB"}


def doc(fabric: dict | None = None, workload: dict | list | None = None, **top: Any) -> dict:
    d: dict[str, Any] = {"name": "c"}
    d.update(top)
    d["fabric"] = [copy.deepcopy(fabric or LEAFSPINE)]
    w = workload if workload is not None else ALLREDUCE
    d["workload"] = copy.deepcopy(w if isinstance(w, list) else [w])
    # move tables after scalars
    for k in ("run", "scale", "failure"):
        if k in d:
            d[k] = d.pop(k)
    return d


def with_(base: dict, **changes: Any) -> dict:
    out = copy.deepcopy(base)
    for k, v in changes.items():
        if v is DELETE:
            out.pop(k, None)
        else:
            out[k] = v
    return out


DELETE = object()

# ---------------------------------------------------------------- the corpus

CASES: list[Case] = []


def add(id: str, key: str, d: dict | None = None, **kw: Any) -> None:
    CASES.append(Case(id=id, key=key, doc=d, **kw))


# 1. every numeric field: not finite, negative, absurdly large, 400 digits, wrong type
BAD_NUMBERS = {"inf": float("inf"), "ninf": float("-inf"), "nan": float("nan"), "neg": -1,
               "1e300": 1e300, "big": BIG, "bool": True, "str": "x"}
NUMERIC_FIELDS: list[tuple[str, str, Any]] = []  # (where, field, builder(value) -> doc)


def _fab(base: dict, f: str):
    return lambda v: doc(fabric=with_(base, **{f: v}))


def _wl(base: dict, f: str, **top: Any):
    return lambda v: doc(workload=with_(base, **{f: v}), **top)


for f in ("host_rate_mbps", "fabric_rate_mbps", "queue_packets", "spines", "leaves",
          "hosts_per_leaf"):
    NUMERIC_FIELDS.append(("fabric[0]", f, _fab(LEAFSPINE, f)))
for f in ("ncps", "ncfs", "hosts_per_ncp", "speedup", "egress_queue_packets"):
    NUMERIC_FIELDS.append(("fabric[0]", f, _fab(DDC, f)))
NUMERIC_FIELDS.append(("fabric[0]", "hosts", _fab(SINGLE, "hosts")))
for f in ("deadline_s", "start_delay_s"):
    NUMERIC_FIELDS.append(("run", f, lambda v, f=f: doc(run={f: v})))
NUMERIC_FIELDS.append(("", "seed", lambda v: doc(seed=v)))
for f in ("real_link_gbps", "time_dilation"):
    NUMERIC_FIELDS.append(("scale", f, lambda v, f=f: doc(
        scale={"real_link_gbps": 400, f: v},
        workload=with_(ALLREDUCE, units="real", size_bytes="1GB"))))
for f in ("size_bytes", "iterations", "gap_s", "start_s", "channels"):
    NUMERIC_FIELDS.append(("workload[0]", f, _wl(ALLREDUCE, f)))
for f in ("size_bytes", "stride", "start_s"):
    NUMERIC_FIELDS.append(("workload[0]", f, _wl(STRIDE, f)))
for f in ("size_bytes", "start_s"):
    def _flow(v: Any, f: str = f) -> dict:
        w = copy.deepcopy(FLOWS)
        w["flows"][2][f] = v
        return doc(workload=w)
    NUMERIC_FIELDS.append(("workload[0].flows[2]", f, _flow))
for f in ("requests", "rate_per_s", "cv", "time_scale", "rate_factor", "prompt_tokens",
          "prompt_sigma", "output_tokens", "output_sigma", "max_prompt_tokens",
          "max_output_tokens", "prompt_bytes_per_token", "token_message_bytes",
          "prefill_s_per_token", "decode_s_per_token", "start_s"):
    NUMERIC_FIELDS.append(("workload[0]", f, _wl(INFERENCE, f)))
for f in ("load", "duration_s", "start_s", "base_rtt_s"):
    NUMERIC_FIELDS.append(("workload[0]", f, _wl(BACKGROUND, f)))
NUMERIC_FIELDS.append(("failure[0]", "at_s", lambda v: doc(failure=[{"at_s": v, "switch": "s1"}])))

# values that are legitimately accepted for a field (the field has no upper bound there)
ACCEPTED = {("", "seed", "neg")}  # placeholder, emptied below: a negative seed is refused too
ACCEPTED = set()
for where, f, build in NUMERIC_FIELDS:
    for vname, v in BAD_NUMBERS.items():
        if f == "start_s" and vname == "neg" and where == "":
            continue
        key = f"{where}.{f}" if where else f
        add(f"number-{where or 'top'}-{f}-{vname}", key, build(v))

# 2. registry lookups with unhashable or unknown kinds
for what, v in (("list", ["leafspine"]), ("table", {"a": 1}), ("unknown", "clos"),
                ("int", 3), ("missing", DELETE)):
    add(f"fabric-kind-{what}", "fabric[0].kind", doc(fabric=with_(LEAFSPINE, kind=v)))
    add(f"workload-kind-{what}", "workload[0].kind", doc(workload=with_(ALLREDUCE, kind=v)))
add("algorithm-list", "workload[0].algorithm", doc(workload=with_(ALLREDUCE, algorithm=["ring"])))
add("datapath-table", "run.datapath", doc(run={"datapath": {"a": 1}}))
add("tcp-cc-unknown", "run.tcp_congestion_control", doc(run={"tcp_congestion_control": "vegas"}))
add("policy-list", "fabric[0].policy", doc(fabric=with_(LEAFSPINE, policy=["ecmp"])))
add("policy-unknown", "fabric[0].policy", doc(fabric=with_(LEAFSPINE, policy="ospf")))
add("model-list", "workload[0].model", doc(workload=with_(INFERENCE, model=["70b"])))
add("model-unknown", "workload[0].model", doc(workload=with_(INFERENCE, model="1t")))
add("arrivals-table", "workload[0].arrivals", doc(workload=with_(INFERENCE, arrivals={"a": 1})))
add("units-unknown", "workload[0].units", doc(workload=with_(ALLREDUCE, units="si")))

# 3. policy parameters
add("priority-hosts-nested", "fabric[0].policy_params.latency_hosts[0]",
    doc(fabric=with_(LEAFSPINE, policy="priority", policy_params={"latency_hosts": [["h1"]]})))
add("priority-hosts-table", "fabric[0].policy_params.latency_hosts[0]",
    doc(fabric=with_(LEAFSPINE, policy="priority", policy_params={"latency_hosts": [{"a": 1}]})))
add("priority-ports-inf", "fabric[0].policy_params.latency_tcp_ports[0][1]",
    doc(fabric=with_(LEAFSPINE, policy="priority",
                     policy_params={"latency_tcp_ports": [[1, Raw("inf")]]})))
add("priority-share-nan", "fabric[0].policy_params.latency_share",
    doc(fabric=with_(LEAFSPINE, policy="priority",
                     policy_params={"latency_hosts": ["h1"], "latency_share": Raw("nan")})))
add("adaptive-interval-inf", "fabric[0].policy_params.interval_s",
    doc(fabric=with_(LEAFSPINE, policy="adaptive", policy_params={"interval_s": Raw("inf")})))
add("adaptive-fraction-nan", "fabric[0].policy_params.elephant_fraction",
    doc(fabric=with_(LEAFSPINE, policy="adaptive",
                     policy_params={"elephant_fraction": Raw("nan")})))
add("ecmp-basis-big", "fabric[0].policy_params.hash_basis",
    doc(fabric=with_(LEAFSPINE, policy_params={"hash_basis": BIG})))
add("ecmp-unknown-param", "fabric[0].policy_params.colour",
    doc(fabric=with_(LEAFSPINE, policy_params={"colour": "red"})))
add("policy-params-list", "fabric[0].policy_params",
    doc(fabric=with_(LEAFSPINE, policy_params=[1, 2])))

# 4. lists and hosts
add("background-hosts-empty", "workload[0].hosts", doc(workload=with_(BACKGROUND, hosts=[])))
add("allreduce-hosts-empty", "workload[0].hosts", doc(workload=with_(ALLREDUCE, hosts=[])))
add("allreduce-hosts-one", "workload[0].hosts", doc(workload=with_(ALLREDUCE, hosts=["h1"])))
add("allreduce-hosts-dup", "workload[0].hosts", doc(workload=with_(ALLREDUCE, hosts=["h1", "h1"])))
add("allreduce-host-int", "workload[0].hosts[1]", doc(workload=with_(ALLREDUCE, hosts=["h1", 2])))
add("allreduce-host-missing", "workload[0].hosts[1]",
    doc(workload=with_(ALLREDUCE, hosts=["h1", "h9"])))
add("allreduce-hosts-table", "workload[0].hosts", doc(workload=with_(ALLREDUCE, hosts={"a": 1})))
add("flows-empty", "workload[0].flows", doc(workload=with_(FLOWS, flows=[])))
add("flows-not-list", "workload[0].flows", doc(workload=with_(FLOWS, flows="h1")))
add("flows-item-int", "workload[0].flows[0]", doc(workload=with_(FLOWS, flows=[1])))
add("flows-src-eq-dst", "workload[0].flows[1].dst", doc(workload=with_(FLOWS, flows=[
    {"src": "h1", "dst": "h2", "size_bytes": 1}, {"src": "h3", "dst": "h3", "size_bytes": 1}])))
add("flows-missing-dst", "workload[0].flows[0].dst",
    doc(workload=with_(FLOWS, flows=[{"src": "h1", "size_bytes": 1}])))
add("flows-unknown-key", "workload[0].flows[0].colour",
    doc(workload=with_(FLOWS, flows=[{"src": "h1", "dst": "h2", "size_bytes": 1, "colour": 1}])))
add("flows-unknown-host", "workload[0].flows[0].dst",
    doc(workload=with_(FLOWS, flows=[{"src": "h1", "dst": "h99", "size_bytes": 1}])))
add("inference-roles-overlap", "workload[0].decode",
    doc(workload=with_(INFERENCE, decode=["h1"])))
add("inference-clients-empty", "workload[0].clients", doc(workload=with_(INFERENCE, clients=[])))
add("stride-multiple", "workload[0].stride", doc(workload=with_(STRIDE, stride=4)))
add("hd-three-hosts", "workload[0].hosts", doc(workload=with_(
    ALLREDUCE, algorithm="halving-doubling", hosts=["h1", "h2", "h3"])))
add("size-below-ranks", "workload[0].size_bytes", doc(workload=with_(ALLREDUCE, size_bytes=2)))

# 5. sizes as strings
for what, v in (("1000000TB", "1000000TB"), ("1e3MB", "1e3MB"), ("unit", "4 parsecs"),
                ("neg", "-4MB"), ("frac", "0.5B"), ("empty", ""), ("digits", "9" * 400 + "MB"),
                ("newline", "4MB\n"), ("inf", "infMB")):
    add(f"size-string-{what}", "workload[0].size_bytes", doc(workload=with_(ALLREDUCE, size_bytes=v)))

# 6. names: unsafe, with a trailing newline, escapes, too long
for what, v in (("newline", "abc\n"), ("escape", "a\x1b[31m"), ("slash", "a/b"),
                ("dots", ".."), ("space", "a b"), ("long", "a" * 41), ("empty", ""),
                ("unicode", "caf\u00e9"), ("int", 5)):
    add(f"name-top-{what}", "name", doc(name=v))
    add(f"name-fabric-{what}", "fabric[0].name", doc(fabric=with_(LEAFSPINE, name=v)))
    add(f"name-workload-{what}", "workload[0].name", doc(workload=with_(ALLREDUCE, name=v)))
add("host-newline", "workload[0].hosts[0]", doc(workload=with_(ALLREDUCE, hosts=["h1\n", "h2"])))
add("failure-switch-newline", "failure[0].switch", doc(failure=[{"at_s": 1.0, "switch": "s1\n"}]))
add("failure-link-newline", "failure[0].link[1]",
    doc(failure=[{"at_s": 1.0, "link": ["l1", "s1\n"]}]))
add("reference-newline", "reference", doc(reference="single\n"))
add("duplicate-fabric-names", "fabric[1].name",
    {"name": "c", "fabric": [LEAFSPINE, LEAFSPINE], "workload": [ALLREDUCE]})
add("duplicate-workload-names", "workload[1].name", doc(workload=[ALLREDUCE, ALLREDUCE]))

# 7. structure: unknown keys, wrong table types, missing tables
add("top-unknown", "colour", doc(colour="red"))
add("scale-unknown", "scale.colour", doc(scale={"real_link_gbps": 400, "colour": 1}))
add("run-unknown", "run.colour", doc(run={"colour": 1}))
add("fabric-unknown", "fabric[0].colour", doc(fabric=with_(LEAFSPINE, colour=1)))
add("workload-unknown", "workload[0].colour", doc(workload=with_(ALLREDUCE, colour=1)))
add("failure-unknown", "failure[0].colour", doc(failure=[{"at_s": 1.0, "switch": "s1",
                                                          "colour": 1}]))
add("missing-name", "name", with_(doc(), name=DELETE))
add("missing-fabric", "fabric", with_(doc(), fabric=DELETE))
add("missing-workload", "workload", with_(doc(), workload=DELETE))
add("fabric-int", "fabric", with_(doc(), fabric=3))
add("fabric-empty-list", "fabric", with_(doc(), fabric=Raw("[]")))
add("workload-string", "workload", with_(doc(), workload="allreduce"))
add("workload-list-of-int", "workload[0]", with_(doc(), workload=[1]))
add("run-string", "run", doc(run=Raw('"fast"')))
add("scale-list", "scale", doc(scale=Raw("[1]")))
add("missing-size", "workload[0].size_bytes", doc(workload=with_(ALLREDUCE, size_bytes=DELETE)))
add("ddc-both-rates", "fabric[0].speedup", doc(fabric=with_(DDC, speedup=1.5,
                                                            fabric_rate_mbps=20)))
add("reference-unknown", "reference", doc(reference="nope"))
add("real-without-scale", "workload[0].units", doc(workload=with_(ALLREDUCE, units="real")))
add("deadline-zero", "run.deadline_s", doc(run={"deadline_s": 0}))
add("deadline-huge", "run.deadline_s", doc(run={"deadline_s": 1e9}))
add("start-delay-huge", "run.start_delay_s", doc(run={"start_delay_s": 1e6}))
add("failure-after-deadline", "failure[0].at_s",
    doc(run={"deadline_s": 10}, failure=[{"at_s": 20, "switch": "s1"}]))
add("failure-both", "failure[0]", doc(failure=[{"at_s": 1.0, "switch": "s1",
                                                "link": ["l1", "s1"]}]))
add("failure-host-switch", "failure[0].switch", doc(failure=[{"at_s": 1.0, "switch": "l1"}]))
add("failure-partition", "failure[1]", doc(failure=[{"at_s": 1.0, "switch": "s1"},
                                                    {"at_s": 2.0, "switch": "s2"}]))

# 8. tiny rates and extreme times that used to be reported as transfers[N].*
add("rate-tiny", "workload[0].rate_per_s", doc(workload=with_(INFERENCE, rate_per_s=1e-300)))
add("cv-tiny", "workload[0].cv", doc(workload=with_(INFERENCE, cv=1e-200, arrivals="gamma")))
add("prompt-sigma-huge", "workload[0].prompt_sigma",
    doc(workload=with_(INFERENCE, prompt_sigma=1000)))
add("scale-tiny", "scale.real_link_gbps", doc(scale={"real_link_gbps": 1e-308},
                                              workload=with_(ALLREDUCE, units="real")))
add("scale-dilation-huge", "scale.time_dilation",
    doc(scale={"real_link_gbps": 400, "time_dilation": 1e300},
        workload=with_(ALLREDUCE, units="real")))
add("gap-huge", "workload[0].gap_s", doc(workload=with_(ALLREDUCE, gap_s=1e12)))
add("background-duration-huge", "workload[0].duration_s",
    doc(workload=with_(BACKGROUND, duration_s=1e12)))
add("background-rtt-nan", "workload[0].base_rtt_s",
    doc(workload=with_(BACKGROUND, base_rtt_s=float("nan"))))
add("background-flows-too-many", "workload[0].duration_s",
    doc(workload=with_(BACKGROUND, load=1.0, duration_s=3600.0, cdf="{dir}/tiny.csv"),
        fabric=with_(LEAFSPINE, host_rate_mbps=10000)),
    files={"tiny.csv": "1,1.0\n"})

# 9. plan size
add("plan-alltoall-256x64x1000", "workload[0]", doc(
    fabric=with_(SINGLE, hosts=256),
    workload=with_(ALLTOALL, size_bytes="1GB", channels=64, iterations=1000)))
add("plan-ring-many-iterations", "workload[0]", doc(
    fabric=with_(SINGLE, hosts=256), workload=with_(ALLREDUCE, channels=64, iterations=1000,
                                                    size_bytes="1GB")))
add("plan-two-workloads", "workload", doc(
    fabric=with_(SINGLE, hosts=128),
    workload=[with_(ALLTOALL, iterations=7, name="a", size_bytes="1GB"),
              with_(ALLTOALL, iterations=7, name="b", size_bytes="1GB")]))
add("fabric-too-many-hosts", "fabric[0]", doc(fabric=with_(LEAFSPINE, spines=64, leaves=64,
                                                           hosts_per_leaf=64)))
add("ddc-too-many-hosts", "fabric[0]", doc(fabric=with_(DDC, ncps=64, hosts_per_ncp=64)))

# 10. CDF and trace files
_TRACE_OK = "TIMESTAMP,ContextTokens,GeneratedTokens\n0,100,10\n1,100,10\n"


def _cdf(name: str) -> dict:
    return doc(workload=with_(BACKGROUND, cdf="{dir}/" + name))


def _trace(name: str) -> dict:
    return doc(workload=with_(INFERENCE, arrivals="trace", trace="{dir}/" + name))


for what, content in (
        ("latin1", b"size_bytes,cdf\n1000,0.5\n2000,1.0\n\xe9\xe9,1.0\n"),
        ("utf16", "size_bytes,cdf\n1000,0.5\n2000,1.0\n".encode("utf-16")),
        ("binary", bytes(range(256)) * 4),
        ("long-field", "1000," + "1" * 140000 + "\n"),
        ("digits", "1" + "0" * 400 + ",1.0\n"),
        ("nan", "1000,nan\n2000,1.0\n"),
        ("inf-size", "1000,0.5\ninf,1.0\n"),
        ("empty", ""),
        ("decreasing", "2000,0.5\n1000,1.0\n"),
        ("last-not-one", "1000,0.5\n2000,0.9\n"),
        ("three-columns", "1000,0.5,1\n"),
        ("huge-size", "1000,0.5\n" + "9" * 30 + ",1.0\n"),
        ("too-many-rows", "".join(f"{i},{i / 200001:.9f}\n" for i in range(1, 200001))
         + "200001,1.0\n")):
    add(f"cdf-{what}", "workload[0].cdf", _cdf("cdf.csv"), files={"cdf.csv": content})
add("cdf-dev-zero", "workload[0].cdf", _cdf("zero"), files={"zero": "@/dev/zero"})
add("cdf-directory", "workload[0].cdf", _cdf("adir"), files={"adir": "@dir"})
add("cdf-missing", "workload[0].cdf", _cdf("nope.csv"))
add("cdf-nul-path", "workload[0].cdf", doc(workload=with_(BACKGROUND, cdf="a\u0000b")))
add("trace-nul-path", "workload[0].trace",
    doc(workload=with_(INFERENCE, arrivals="trace", trace="a\u0000b")))
add("cdf-etc-passwd", "workload[0].cdf", doc(workload=with_(BACKGROUND, cdf="/etc/passwd")),
    forbid=("root:", "/bin/"))
add("cdf-path-escape", "workload[0].cdf",
    doc(workload=with_(BACKGROUND, cdf="/tmp/x\n\x1b[31mred")), forbid=("\x1b",))
for what, content in (
        ("latin1", _TRACE_OK.encode() + b"\xe9,1,1\n"),
        ("utf16", _TRACE_OK.encode("utf-16")),
        ("long-field", "TIMESTAMP,ContextTokens,GeneratedTokens\n0," + "1" * 140000 + ",1\n"),
        ("digits", "TIMESTAMP,ContextTokens,GeneratedTokens\n0,1" + "0" * 400 + ",1\n"),
        ("ts-digits", "TIMESTAMP,ContextTokens,GeneratedTokens\n1" + "0" * 400 + ",1,1\n"),
        ("ts-extreme", "TIMESTAMP,ContextTokens,GeneratedTokens\n0,10,1\n1e300,10,1\n"),
        ("ts-nan", "TIMESTAMP,ContextTokens,GeneratedTokens\nnan,10,1\n"),
        ("ts-negative-inf", "TIMESTAMP,ContextTokens,GeneratedTokens\n-inf,10,1\n"),
        ("ts-bad-date", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-13-45 99:00:00,10,1\n"),
        ("tokens-huge", "TIMESTAMP,ContextTokens,GeneratedTokens\n0,10,10000000000000\n"),
        ("no-header", "0,10,1\n"),
        ("empty", ""),
        ("no-rows", "TIMESTAMP,ContextTokens,GeneratedTokens\n"),
        ("short-row", "TIMESTAMP,ContextTokens,GeneratedTokens\n0,10\n"),
        ("binary", b"\x00\x01\x02" * 100)):
    add(f"trace-{what}", "workload[0].trace", _trace("trace.csv"), files={"trace.csv": content})
add("trace-dev-zero", "workload[0].trace", _trace("zero"), files={"zero": "@/dev/zero"})
add("trace-directory", "workload[0].trace", _trace("adir"), files={"adir": "@dir"})
add("trace-etc-passwd", "workload[0].trace",
    doc(workload=with_(INFERENCE, arrivals="trace", trace="/etc/passwd")), forbid=("root:",))
add("trace-without-arrivals", "workload[0].trace", doc(workload=with_(INFERENCE, trace="x.csv")))

# 11. the experiment file itself
_OK = to_toml(doc())
CASES += [
    Case("file-binary", "{spec}", text=bytes(range(256)) * 8),
    Case("file-utf16", "{spec}", text=_OK.encode("utf-16")),
    Case("file-latin1", "{spec}", text=_OK.encode() + b'description = "\xe9"\n'),
    Case("file-nul", "{spec}", text=_OK.encode() + b"\x00\n"),
    Case("file-huge-int", "{spec}", text=_OK.encode() + b"seed = " + HUGE.text.encode() + b"\n"),
    Case("file-not-toml", "{spec}", text=b"name = \n"),
    Case("file-empty", "name", text=b"", keys=("name", "fabric", "workload")),
    Case("file-too-big", "{spec}", text=_OK.encode() + b"#" * (2 * 1024 * 1024) + b"\n"),
    Case("file-directory", "{dir}/adir", files={"adir": "@dir"}, argv=("check", "{dir}/adir")),
    Case("file-dev-zero", "/dev/zero", argv=("check", "/dev/zero")),
    Case("file-missing", "{dir}/nope.toml", argv=("check", "{dir}/nope.toml")),
    Case("file-name-escape", "{dir}/a\n\x1b[31m.toml", argv=("check", "{dir}/a\n\x1b[31m.toml"),
         forbid=("\x1b",)),
    Case("compare-directory", "{dir}/adir", files={"adir": "@dir"},
         argv=("compare", "{dir}/adir")),
    Case("run-directory", "{dir}/adir", files={"adir": "@dir"}, argv=("run", "{dir}/adir")),
    Case("deep-nesting", "{spec}", text=b"name = " + b"[" * 100000 + b"]" * 100000 + b"\n"),
]

# 12. command lines (the spec itself is valid: the error is in the arguments)
_GOOD = doc()
for id_, key, argv, files in (
        ("out-is-file", "--out", ("run", "{spec}", "--out", "{dir}/afile"), {"afile": "x"}),
        ("out-under-file", "--out", ("run", "{spec}", "--out", "{dir}/afile/sub"), {"afile": "x"}),
        ("out-unwritable", "--out", ("run", "{spec}", "--out", "/proc/aifabric"), {}),
        ("compare-out-is-file", "--out", ("compare", "{spec}", "--out", "{dir}/afile"),
         {"afile": "x"}),
        ("fabric-unknown", "--fabric", ("run", "{spec}", "--fabric", "nope"), {}),
        ("fabric-escape", "--fabric", ("run", "{spec}", "--fabric", "a\n\x1b[2J"), {}),
        ("seed-negative", "--seed", ("run", "{spec}", "--seed", "-1"), {}),
        ("seed-huge", "--seed", ("run", "{spec}", "--seed", "9" * 30), {}),
        ("seed-word", "--seed", ("run", "{spec}", "--seed", "one"), {}),
        ("seeds-zero", "--seeds", ("compare", "{spec}", "--seeds", "0"), {}),
        ("seeds-huge", "--seeds", ("compare", "{spec}", "--seeds", "1000"), {}),
        ("seeds-word", "--seeds", ("compare", "{spec}", "--seeds", "x"), {}),
        ("unknown-command", "command", ("frobnicate",), {}),
        ("no-command", "command", (), {}),
        ("check-no-file", "experiment", ("check",), {}),
        ("unknown-option", "--colour", ("check", "{spec}", "--colour"), {}),
        ("clean-unknown-option", "--bogus", ("clean", "--bogus"), {})):
    CASES.append(Case(f"argv-{id_}", key, doc=_GOOD, argv=argv, files=files))

# 13. several errors in one file: all reported, in order
CASES.append(Case("multi-three", "fabric[0].spines", doc=doc(
    fabric=with_(LEAFSPINE, spines=-1, host_rate_mbps=float("inf")),
    workload=with_(ALLREDUCE, iterations=0)),
    keys=("fabric[0].spines", "fabric[0].host_rate_mbps", "workload[0].iterations")))
CASES.append(Case("multi-run-and-flows", "run.deadline_s", doc=doc(
    run={"deadline_s": float("nan"), "start_delay_s": -1},
    workload=with_(FLOWS, flows=[{"src": "h1", "dst": "h2", "size_bytes": 0},
                                 {"src": "h1", "dst": "h2", "size_bytes": 1,
                                  "start_s": float("inf")}])),
    keys=("run.deadline_s", "run.start_delay_s", "workload[0].flows[0].size_bytes",
          "workload[0].flows[1].start_s")))
CASES.append(Case("multi-capped", "workload[0].flows[0].start_s", doc=doc(
    workload=with_(FLOWS, flows=[{"src": "h1", "dst": "h2", "size_bytes": 1, "start_s": -1}
                                 for _ in range(100)])),
    keys=tuple(f"workload[0].flows[{i}].start_s" for i in range(20))))


def spec_text(case: Case, scratch: str) -> bytes | None:
    """The experiment file's bytes for `case` ({dir} replaced by `scratch`), or None."""
    if case.text is not None:
        return case.text
    if case.doc is None:
        return None
    return to_toml(case.doc).replace("{dir}", scratch).encode()
