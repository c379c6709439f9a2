"""The experiment spec: typed, frozen dataclasses loaded from a TOML file.

An experiment names one or more fabrics (``[fabric]`` or ``[[fabric]]``) and one or more workloads
(``[[workload]]``). Everything is validated here, before anything is built: unknown keys, wrong
types, impossible values, unsafe names, and workloads naming hosts a fabric lacks all raise
SpecError naming the key.

Units: a workload's sizes, times and rates are emulated units as written (``units = "emulated"``,
the default) or real units (``units = "real"``) converted through an optional top-level table

    [scale]
    real_link_gbps = 400     # the real NIC rate the fabric's host_rate_mbps stands for
    time_dilation = 10       # emulated seconds per real second (default 1)

size factor = host_rate_mbps / (real_link_gbps * 1000) * time_dilation; emulated bytes = real
bytes * size factor, emulated seconds = real seconds * time_dilation (traffic.scaling). Results
are measured in emulated units; with a [scale] the summary also gives real-unit equivalents and
each workload's input units. ``units = "real"`` without a [scale] table is a SpecError.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import networkx as nx

from topologies.ddc import (DEFAULT_CREDIT_INTERVAL_MS, DEFAULT_EGRESS_QUEUE_PACKETS,
                            DEFAULT_SPEEDUP, build_ddc)
from topologies.leafspine import build_leaf_spine
from topologies.model import hosts as fabric_hosts
from topologies.single import build_single_switch

from topologies.errors import Collector, SpecError
from fabric.spec.failures import FailureSpec, check_failures
from traffic.scaling import ScaleSpec, check_scale
from fabric.spec.cost import CostSpec
from fabric.spec.cluster import ClusterSpec, check_cluster
from fabric.spec.load import bounded, check_name, load, positive
from traffic.inputfile import read_text
from topologies.queues import DEFAULT_MTU, MAX_MTU, MIN_MTU, apply_link_settings
from fabric.spec.units import parse_queue
from fabric.spec.workload import WORKLOADS, Workload

# ---------------------------------------------------------------- fabrics


@dataclass(frozen=True, kw_only=True)
class _FabricBase:
    """Keys every fabric kind has: the hosts' line rate, MTU, queue depth and the controller policy.

    `mtu`: every host and switch interface, the shaping and the ideal model's MSS follow it.
    `queue`: every egress queue's depth as packets (an int), bytes (`"100KB"`) or time at the
    link's line rate (`"2ms"`, `"500us"`); it replaces `queue_packets` (topologies.queues).
    """
    host_rate_mbps: float = 20.0
    queue_packets: int = positive(2, 100000, default=100)
    queue: int | str | None = None
    mtu: int = positive(MIN_MTU, MAX_MTU, default=DEFAULT_MTU)
    policy: str = "ecmp"
    policy_params: dict[str, Any] = field(default_factory=dict)

    def check(self, key: str) -> None:
        """Cross-field rules of the kind (SpecError naming `key`.<field>): queue vs queue_packets."""
        if self.queue is not None and self.queue_packets != 100:
            raise SpecError(f"{key}.queue", "give queue or queue_packets, not both")
        depth = parse_queue(self.queue, f"{key}.queue")
        if depth is not None and depth.packets is not None and not 2 <= depth.packets <= 100000:
            raise SpecError(f"{key}.queue", f"must be 2..100000 packets, got {depth.packets}")

    def _finish(self, graph: nx.Graph) -> nx.Graph:
        """The built model with this fabric's MTU and queue depth (topologies.queues)."""
        return apply_link_settings(graph, self.mtu, parse_queue(self.queue, "queue"))


@dataclass(frozen=True, kw_only=True)
class LeafSpineSpec(_FabricBase):
    """Two-tier leaf/spine Clos (topologies.leafspine)."""
    kind: Literal["leafspine"]
    spines: int = positive(1, 64)
    leaves: int = positive(1, 64)
    hosts_per_leaf: int = positive(1, 64)
    fabric_rate_mbps: float = 20.0
    name: str = "leafspine"

    def host_count(self) -> tuple[int, str]:
        return self.leaves * self.hosts_per_leaf, "leaves x hosts_per_leaf"

    def build(self) -> nx.Graph:
        return self._finish(build_leaf_spine(
            self.spines, self.leaves, self.hosts_per_leaf, self.host_rate_mbps,
            self.fabric_rate_mbps, self.queue_packets, name=self.name))


@dataclass(frozen=True, kw_only=True)
class SingleSwitchSpec(_FabricBase):
    """One big non-blocking switch: the ideal reference (topologies.single)."""
    kind: Literal["single"]
    hosts: int = positive(2, 256)
    name: str = "single"

    def host_count(self) -> tuple[int, str]:
        return self.hosts, "hosts"

    def build(self) -> nx.Graph:
        return self._finish(build_single_switch(self.hosts, self.host_rate_mbps,
                                                self.queue_packets, name=self.name))


@dataclass(frozen=True, kw_only=True)
class DDCSpec(_FabricBase):
    """Distributed Disaggregated Chassis: NCPs, NCFs, per-packet spraying (topologies.ddc).

    Give either `fabric_rate_mbps` or `speedup` (default speed-up: topologies.ddc).
    `scheduler = "credits"`: VOQs in every NCP, rates set by a credit allocator every
    `credit_interval_ms`; `reassembly`: the egress delivers each VOQ's packets in order
    (docs/ddc.md). `scheduler = "none"`: spraying straight from the host ports."""
    kind: Literal["ddc"]
    ncps: int = positive(1, 64)
    ncfs: int = positive(1, 16)
    hosts_per_ncp: int = positive(1, 64)
    fabric_rate_mbps: float | None = None
    speedup: float | None = bounded(0, 16, above=True, default=None)
    egress_queue_packets: int = positive(2, 100000, default=DEFAULT_EGRESS_QUEUE_PACKETS)
    scheduler: Literal["credits", "none"] = "credits"
    credit_interval_ms: float = bounded(1, 1000, default=DEFAULT_CREDIT_INTERVAL_MS)
    reassembly: bool = True
    policy: str = "ddc"
    name: str = "ddc"

    def host_count(self) -> tuple[int, str]:
        return self.ncps * self.hosts_per_ncp, "ncps x hosts_per_ncp"

    def check(self, key: str) -> None:
        super().check(key)
        if self.fabric_rate_mbps is not None and self.speedup is not None:
            raise SpecError(f"{key}.speedup", "give fabric_rate_mbps or speedup, not both")
        if self.speedup is not None and not 0 < self.speedup <= 16:
            raise SpecError(f"{key}.speedup", f"must be in (0, 16], got {self.speedup}")

    def build(self) -> nx.Graph:
        return self._finish(build_ddc(
            self.ncps, self.ncfs, self.hosts_per_ncp, self.host_rate_mbps, self.fabric_rate_mbps,
            DEFAULT_SPEEDUP if self.speedup is None else self.speedup,
            self.egress_queue_packets, self.queue_packets, name=self.name,
            scheduler=self.scheduler, credit_interval_ms=self.credit_interval_ms,
            reassembly=self.reassembly))


FABRIC_KINDS: dict[str, type] = {"leafspine": LeafSpineSpec, "single": SingleSwitchSpec,
                                 "ddc": DDCSpec}
FabricSpec = LeafSpineSpec | SingleSwitchSpec | DDCSpec

# ---------------------------------------------------------------- experiment


@dataclass(frozen=True)
class RunSpec:
    """How to run: deadline for the workload, datapath, settle time before t0, hosts' TCP."""
    deadline_s: float = bounded(0, 86400, above=True, default=120.0)
    datapath: Literal["auto", "kernel", "user"] = "auto"
    start_delay_s: float = bounded(0, 60, default=0.5)
    tcp_congestion_control: Literal["cubic", "bbr", "reno"] = "cubic"
    # Linux restarts slow start on a connection idle for an RTO (net.ipv4.
    # tcp_slow_start_after_idle, per host namespace); false keeps the window across idle
    # periods (compute gaps), as NCCL's always-busy connections and RDMA see it.
    tcp_slow_start_after_idle: bool = False
    # links to record as pcap files during the workload, named as links.csv names them
    # ("l1-s1", "l2-h3"); fabric.run.capture, analysed by fabric.analysis.capture
    capture: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExperimentSpec:
    name: str
    fabrics: tuple[FabricSpec, ...]
    workloads: tuple[Workload, ...]
    seed: int = 1
    description: str = ""
    run: RunSpec = RunSpec()
    reference: str = ""  # `fabric compare`'s reference fabric (a fabric name; "" = default)
    failures: tuple[FailureSpec, ...] = ()  # [[failure]] entries (fabric.run.failures)
    scale: ScaleSpec | None = None  # [scale]: real units vs emulated units (traffic.scaling)
    cost: CostSpec | None = None  # [cost]: the cost line's assumptions (None: the defaults)
    cluster: ClusterSpec | None = None  # [cluster]: split over servers (docs/cluster.md)
    # the experiment as TOML text, as run (after --set overrides): written as the run's spec.toml
    source_toml: str = field(default="", compare=False, repr=False)

    def fabric(self, name: str | None = None) -> FabricSpec:
        """The named fabric, or the first one."""
        if name is None:
            return self.fabrics[0]
        for f in self.fabrics:
            if f.name == name:
                return f
        raise SpecError("--fabric", f"no fabric named {name!r} (have: "
                                    f"{', '.join(f.name for f in self.fabrics)})")


MAX_HOSTS = 256        # hosts of one fabric (README "Bounds")
MAX_TABLES = {"fabric": 16, "workload": 64}  # [[fabric]] and [[workload]] tables


def _load_kind(registry: dict[str, type], table: Any, key: str) -> Any:
    if not isinstance(table, dict):
        raise SpecError(key, f"expected a table, got {type(table).__name__}")
    kind = table.get("kind")
    if "kind" not in table:
        raise SpecError(f"{key}.kind", f"missing required key (one of {', '.join(sorted(registry))})")
    if not isinstance(kind, str) or kind not in registry:
        raise SpecError(f"{key}.kind", f"{kind!r} is not one of {', '.join(sorted(registry))}")
    return load(registry[kind], table, key)


def _as_list(value: Any, key: str) -> list[Any]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and value:
        if len(value) > MAX_TABLES[key]:
            raise SpecError(key, f"{len(value)} tables, more than {MAX_TABLES[key]}")
        return value
    raise SpecError(key, "expected at least one table")


def _load_all(registry: dict[str, type], doc: dict[str, Any], key: str,
              errors: Collector) -> tuple[Any, ...]:
    """Every [[key]] table of `doc` as specs; errors of all of them go to `errors`."""
    if key not in doc:
        errors.errors.append(SpecError(key, "missing required key"))
        return ()
    out = []
    with errors.check():
        for i, table in enumerate(_as_list(doc[key], key)):
            with errors.check():
                out.append(_load_kind(registry, table, f"{key}[{i}]"))
    return tuple(out)


def parse_spec(doc: dict[str, Any]) -> ExperimentSpec:
    """Validate a parsed TOML document; raise SpecError (SpecErrors: several) naming the keys.

    Checks everything a spec can check on its own and on each fabric's model; the traffic plans
    the spec implies are checked one layer up (fabric.plan.experiment.parse_experiment).
    Tables are all loaded before any error is raised, so `fabric check` reports every bad key
    of the file (in file order); the checks against each fabric's model run once they are sound.
    """
    errors = Collector()
    head = {k: v for k, v in doc.items() if k not in ("fabric", "workload")}
    rest = None
    with errors.check():  # top-level keys first: a TOML file writes them before its tables
        rest = load(_ExperimentHead, head, "")
    fabrics = _load_all(FABRIC_KINDS, doc, "fabric", errors)
    workloads = _load_all(WORKLOADS, doc, "workload", errors)
    errors.raise_any()
    assert rest is not None
    names = [f.name for f in fabrics]
    for i, name in enumerate(names):
        if name in names[:i]:
            errors.errors.append(SpecError(f"fabric[{i}].name", f"{name!r} is taken by "
                                           f"fabric[{names.index(name)}]: fabric names must differ"))
    if rest.reference and rest.reference not in names:
        errors.errors.append(SpecError("reference", f"{rest.reference!r} names no fabric "
                                                    f"(have: {', '.join(names)})"))
    spec = ExperimentSpec(name=rest.name, seed=rest.seed, description=rest.description,
                          run=rest.run, fabrics=fabrics, workloads=workloads,
                          reference=rest.reference, failures=rest.failure, scale=rest.scale,
                          cost=rest.cost, cluster=rest.cluster)
    if rest.cluster is not None:
        with errors.check():
            rest.cluster.check("cluster")
        if rest.run.capture:   # the head's packet sockets cannot see the servers' interfaces
            errors.errors.append(SpecError("run.capture", "packet capture is not supported in "
                                           "cluster mode (the links are on the servers): remove "
                                           "run.capture or the [cluster] table"))
    for i, w in enumerate(workloads):
        with errors.check():
            w.check(f"workload[{i}]")
    with errors.check():
        check_scale(spec.scale, [w.units for w in workloads])
    for i, fab in enumerate(fabrics):
        with errors.check():
            fab.check(f"fabric[{i}]")
            n, how = fab.host_count()
            if n > MAX_HOSTS:
                raise SpecError(f"fabric[{i}]", f"{how} = {n} hosts, more than {MAX_HOSTS}")
    errors.raise_any()
    for i, fab in enumerate(fabrics):
        graph = fab.build()
        with errors.check():
            check_policy(fab, graph, f"fabric[{i}]")
        with errors.check():
            check_workload_hosts(spec, graph, f"fabric[{i}]")
        with errors.check():
            check_failures(spec.failures, graph, fab.name, names, spec.run.deadline_s)
        with errors.check():
            capture_interfaces(spec.run.capture, graph)
        with errors.check():
            check_cluster(spec.cluster, graph, f"fabric[{i}]")
        errors.raise_any()
    return spec


def capture_interfaces(links: tuple[str, ...], graph: nx.Graph) -> list[tuple[str, str]]:
    """(link name, the switch interface to capture on) for each `run.capture` entry "a-b"
    (either order); SpecError names run.capture[i] when the fabric has no such link."""
    from topologies.model import HOST, intf_name
    out = []
    for i, name in enumerate(links):
        key = f"run.capture[{i}]"
        a, sep, b = name.partition("-")
        if not sep:
            raise SpecError(key, f"a link is named \"a-b\" (e.g. \"l1-s1\"), got {name!r}")
        check_name(a, key)
        check_name(b, key)
        if not graph.has_edge(a, b):
            raise SpecError(key, f"fabric {graph.graph.get('name')!r} has no link {a}-{b}")
        sw = a if graph.nodes[a]["role"] != HOST else b
        out.append((f"{a}-{b}", intf_name(sw, graph.edges[a, b]["ports"][sw])))
    return out


def check_policy(fab: FabricSpec, graph: nx.Graph, fabric_key: str) -> None:
    """The fabric's policy and its params, checked on the built model (SpecError names
    fabric[i].policy or fabric[i].policy_params.<key>)."""
    from controller.policies import make_policy
    try:
        make_policy(fab.policy, graph, fab.policy_params)
    except SpecError as exc:
        key = exc.key if exc.key == "policy" else exc.key.replace("params", "policy_params", 1)
        raise SpecError(f"{fabric_key}.{key}", exc.message) from None
    except (TypeError, ValueError, OverflowError) as exc:  # a parameter of an unexpected shape
        raise SpecError(f"{fabric_key}.policy_params", f"not understood by policy "
                                                       f"{fab.policy!r}: {exc}") from None


@dataclass(frozen=True)
class _ExperimentHead:
    name: str
    seed: int = positive(0, 2**32 - 1, default=1)
    description: str = ""
    run: RunSpec = RunSpec()
    reference: str = ""
    failure: tuple[FailureSpec, ...] = ()
    scale: ScaleSpec | None = None
    cost: CostSpec | None = None
    cluster: ClusterSpec | None = None


def check_workload_hosts(spec: ExperimentSpec, graph: nx.Graph, fabric_key: str) -> None:
    """Every host a workload names must exist in the fabric (and the workload's own rules on
    the fabric's hosts hold: Workload.check_fabric)."""
    have = fabric_hosts(graph)
    for i, w in enumerate(spec.workloads):
        w.check_fabric(have, f"workload[{i}]", fabric_key)
        for sub, host in w.named_hosts():
            key = f"workload[{i}].{sub}"
            check_name(host, key)
            if host not in have:
                raise SpecError(key, f"host {host!r} is not in {fabric_key} "
                                     f"({graph.graph['name']} has h1..h{len(have)})")


def read_experiment_text(path: str | Path) -> str:
    """An experiment file's text, read with the size cap (SpecError naming the file)."""
    return read_text(path, str(path), "experiment file", MAX_EXPERIMENT_BYTES)


def parse_toml(text: str, key: str) -> dict[str, Any]:
    """An experiment file's text as a TOML document (SpecError naming `key`, the file)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(key, f"not valid TOML: {exc}") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise SpecError(key, f"not valid TOML: {str(exc).split(';')[0]}") from None
    except RecursionError:
        raise SpecError(key, "not valid TOML: arrays or tables nested too deeply") from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read an experiment TOML file into a document (SpecError naming the file)."""
    return parse_toml(read_experiment_text(path), str(path))


MAX_EXPERIMENT_BYTES = 1 << 20  # 1 MiB


def replace(spec: Any, **changes: Any) -> Any:
    """dataclasses.replace, re-exported for callers that tweak specs (e.g. seeds)."""
    return dataclasses.replace(spec, **changes)
