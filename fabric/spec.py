"""The experiment spec: typed, frozen dataclasses loaded from a TOML file.

An experiment names one or more fabrics (``[fabric]`` or ``[[fabric]]``) and one or more workloads
(``[[workload]]``). Everything is validated here, before anything is built: unknown keys, wrong
types, impossible values, unsafe names, and workloads naming hosts a fabric lacks all raise
SpecError naming the key.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import networkx as nx

from topologies.leafspine import build_leaf_spine
from topologies.single import build_single_switch

from .errors import SpecError
from .specload import check_name, load, positive

# ---------------------------------------------------------------- fabrics


@dataclass(frozen=True)
class LeafSpineSpec:
    """Two-tier leaf/spine Clos (topologies.leafspine)."""
    kind: Literal["leafspine"]
    spines: int = positive(1, 64)
    leaves: int = positive(1, 64)
    hosts_per_leaf: int = positive(1, 64)
    host_rate_mbps: float = 20.0
    fabric_rate_mbps: float = 20.0
    queue_packets: int = positive(2, 100000, default=100)
    policy: str = "ecmp"
    policy_params: dict[str, Any] = field(default_factory=dict)
    name: str = "leafspine"

    def build(self) -> nx.Graph:
        return build_leaf_spine(self.spines, self.leaves, self.hosts_per_leaf, self.host_rate_mbps,
                                self.fabric_rate_mbps, self.queue_packets, name=self.name)


@dataclass(frozen=True)
class SingleSwitchSpec:
    """One big non-blocking switch: the ideal reference (topologies.single)."""
    kind: Literal["single"]
    hosts: int = positive(2, 256)
    host_rate_mbps: float = 20.0
    queue_packets: int = positive(2, 100000, default=100)
    policy: str = "ecmp"
    policy_params: dict[str, Any] = field(default_factory=dict)
    name: str = "single"

    def build(self) -> nx.Graph:
        return build_single_switch(self.hosts, self.host_rate_mbps, self.queue_packets, name=self.name)


FABRIC_KINDS: dict[str, type] = {"leafspine": LeafSpineSpec, "single": SingleSwitchSpec}
FabricSpec = Union[LeafSpineSpec, SingleSwitchSpec]

# ---------------------------------------------------------------- workloads


@dataclass(frozen=True)
class AllReduceSpec:
    """A collective over a group of hosts (``hosts = "all"`` or a list of host names)."""
    kind: Literal["allreduce"]
    size_bytes: int
    hosts: tuple[str, ...] = ("all",)
    algorithm: Literal["ring"] = "ring"
    iterations: int = positive(1, 1000, default=1)
    gap_s: float = 0.0
    start_s: float = 0.0
    name: str = "allreduce"


@dataclass(frozen=True)
class FlowSpec:
    """One point-to-point flow."""
    src: str
    dst: str
    size_bytes: int
    start_s: float = 0.0


@dataclass(frozen=True)
class FlowsSpec:
    """A list of point-to-point flows (``[[workload.flows]]``)."""
    kind: Literal["flows"]
    flows: tuple[FlowSpec, ...]
    name: str = "flows"


WORKLOAD_KINDS: dict[str, type] = {"allreduce": AllReduceSpec, "flows": FlowsSpec}
WorkloadSpec = Union[AllReduceSpec, FlowsSpec]

# ---------------------------------------------------------------- experiment


@dataclass(frozen=True)
class RunSpec:
    """How to run: deadline for the workload, datapath, settle time before t0, hosts' TCP."""
    deadline_s: float = 120.0
    datapath: Literal["auto", "kernel", "user"] = "auto"
    start_delay_s: float = 0.5
    tcp_congestion_control: Literal["cubic", "bbr", "reno"] = "cubic"


@dataclass(frozen=True)
class ExperimentSpec:
    name: str
    fabrics: tuple[Any, ...]
    workloads: tuple[Any, ...]
    seed: int = 1
    description: str = ""
    run: RunSpec = RunSpec()

    def fabric(self, name: str | None = None) -> Any:
        """The named fabric, or the first one."""
        if name is None:
            return self.fabrics[0]
        for f in self.fabrics:
            if f.name == name:
                return f
        raise SpecError("--fabric", f"no fabric named {name!r} (have: "
                                    f"{', '.join(f.name for f in self.fabrics)})")


def _load_kind(registry: dict[str, type], table: Any, key: str) -> Any:
    if not isinstance(table, dict):
        raise SpecError(key, f"expected a table, got {type(table).__name__}")
    kind = table.get("kind")
    if kind not in registry:
        raise SpecError(f"{key}.kind", f"{kind!r} is not one of {', '.join(sorted(registry))}")
    return load(registry[kind], table, key)


def _as_list(value: Any, key: str) -> list[Any]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and value:
        return value
    raise SpecError(key, "expected at least one table")


def parse_experiment(doc: dict[str, Any]) -> ExperimentSpec:
    """Validate a parsed TOML document; raise SpecError naming the first bad key."""
    doc = dict(doc)
    for required in ("name", "fabric", "workload"):
        if required not in doc:
            raise SpecError(required, "missing required key")
    fabrics = tuple(_load_kind(FABRIC_KINDS, t, f"fabric[{i}]")
                    for i, t in enumerate(_as_list(doc.pop("fabric"), "fabric")))
    workloads = tuple(_load_kind(WORKLOAD_KINDS, t, f"workload[{i}]")
                      for i, t in enumerate(_as_list(doc.pop("workload"), "workload")))
    rest = load(_ExperimentHead, doc, "")
    names = [f.name for f in fabrics]
    if len(set(names)) != len(names):
        raise SpecError("fabric.name", f"fabric names must differ, got {names}")
    spec = ExperimentSpec(name=rest.name, seed=rest.seed, description=rest.description,
                          run=rest.run, fabrics=fabrics, workloads=workloads)
    for i, fab in enumerate(fabrics):
        check_workload_hosts(spec, fab.build(), f"fabric[{i}]")
    return spec


@dataclass(frozen=True)
class _ExperimentHead:
    name: str
    seed: int = 0
    description: str = ""
    run: RunSpec = RunSpec()


def check_workload_hosts(spec: ExperimentSpec, graph: nx.Graph, fabric_key: str) -> None:
    """Every host a workload names must exist in the fabric."""
    from topologies.model import hosts
    have = set(hosts(graph))
    for i, w in enumerate(spec.workloads):
        named: list[tuple[str, str]] = []
        if isinstance(w, AllReduceSpec) and w.hosts != ("all",):
            named = [(f"workload[{i}].hosts[{j}]", h) for j, h in enumerate(w.hosts)]
        elif isinstance(w, FlowsSpec):
            for j, fl in enumerate(w.flows):
                named += [(f"workload[{i}].flows[{j}].src", fl.src),
                          (f"workload[{i}].flows[{j}].dst", fl.dst)]
        for key, host in named:
            check_name(host, key)
            if host not in have:
                raise SpecError(key, f"host {host!r} is not in {fabric_key} "
                                     f"({graph.graph['name']} has h1..h{len(have)})")


def load_experiment(path: str | Path) -> ExperimentSpec:
    """Read and validate an experiment TOML file."""
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise SpecError(str(p), "no such experiment file") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(str(p), f"not valid TOML: {exc}") from None
    return parse_experiment(doc)


def replace(spec: Any, **changes: Any) -> Any:
    """dataclasses.replace, re-exported for callers that tweak specs (e.g. seeds)."""
    return dataclasses.replace(spec, **changes)
