"""What every workload kind provides, and the registry the spec loader finds kinds in.

A workload kind is one module in fabric/workloads/ (a plug-in, like controller policies): a
frozen dataclass subclassing `Workload`, decorated with `@register`. The dataclass is its own
TOML schema (fabric.spec.load); its methods are the stages' only view of it:

    check(key)            cross-field rules on the table alone          (fabric.spec)
    named_hosts()         the host names it gives, for the existence check (fabric.spec)
    check_fabric(...)     rules that need the fabric's host list           (fabric.spec)
    transfer_count(ctx)   how many transfers plan() would make, cheaply     (fabric.plan)
    plan(ctx)             its transfers, from the traffic/ generators      (fabric.plan)
    summarise(recs, ctx)  its section of the run summary, if it has one    (fabric.analysis)

The stages loop over `spec.workloads` and call these methods: no stage names a kind, so adding
a workload touches one file. `WORKLOADS` lives here, in the spec layer, because the loader looks
kinds up by name; the kinds register themselves when fabric.workloads is imported, which the
`fabric` package does first of all (fabric/__init__.py), so the registry is complete before any
spec is parsed.
"""
from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from typing import ClassVar, Literal, Mapping, Protocol, Sequence, TypeVar

import networkx as nx

from topologies.errors import SpecError
from topologies.model import host_rate_mbps
from topologies.model import hosts as fabric_hosts
from traffic.plan import TrafficPlan
from traffic.records import FlowRecord
from traffic.scaling import IDENTITY, Convert

Units = Literal["emulated", "real"]
# How a workload's transfers map onto TCP connections (traffic.connections, docs/transport.md):
# "persistent" reuses long-lived connections as the workload's real stack does, "per_transfer"
# opens one per transfer. Every kind has the key; its default is the realistic one for the kind.
Connections = Literal["persistent", "per_transfer"]


@dataclass(frozen=True)
class PlanContext:
    """What a workload's planner sees: the fabric model, the seed, and its unit conversion."""
    graph: nx.Graph
    seed: int
    convert: Convert = IDENTITY

    def hosts(self, selection: tuple[str, ...]) -> tuple[str, ...]:
        """("all",) means every host of the fabric, in order; otherwise the list as given."""
        return tuple(fabric_hosts(self.graph)) if selection == ("all",) else selection

    def host_rate_mbps(self, host: str) -> float:
        """The line rate of `host`'s NIC."""
        return host_rate_mbps(self.graph, host)

    def rng_seed(self, name: str) -> str:
        """A random seed of the workload's own: same draws whatever else the experiment runs."""
        return f"{self.seed}/{name}"


@dataclass(frozen=True)
class SummaryContext:
    """What a workload's summariser sees besides its records: host line rates, units."""
    host_rates_mbps: Mapping[str, float]
    convert: Convert = IDENTITY


class SectionResult(Protocol):
    """A workload's result in the run summary: a dataclass (summary.json) that prints itself."""
    def lines(self, name: str, time_dilation: float | None) -> list[str]: ...


@dataclass(frozen=True)
class WorkloadSummary:
    """What `summarise` returns: the result stored under summary.<section>[workload name], and
    optional rows of a run-directory CSV (`csv_name`, shared by every workload of the kind)."""
    result: SectionResult
    csv_name: str = ""
    csv_header: tuple[str, ...] = ()
    csv_rows: tuple[tuple[object, ...], ...] = ()


class Workload:
    """Base of every workload kind; the defaults are "nothing to check / nothing to report".

    Subclasses are frozen dataclasses with a `kind: Literal["<kind>"]` field and a `name` field
    (the workload's name in results)."""
    kind: str
    name: str
    units: str = "emulated"  # sizes/times as written; "real": through [scale] (traffic.scaling)
    connections: str = "per_transfer"  # Connections; each kind declares it with its default
    section: ClassVar[str] = ""  # summary.json key its summarise() fills ("" = none)

    def check(self, key: str) -> None:
        """Cross-field rules (SpecError naming `key`.<field>); types and bounds are checked by
        the loader."""

    def named_hosts(self) -> list[tuple[str, str]]:
        """(key below the workload, host name) for every host the table names."""
        return []

    def check_fabric(self, fabric_hosts: Sequence[str], key: str, fabric_key: str) -> None:
        """Rules that depend on the fabric's hosts (SpecError naming `key`.<field>)."""

    def transfer_count(self, ctx: PlanContext) -> tuple[int, str] | None:
        """(transfers plan() would make, how that number comes about), computed without
        planning, so an enormous plan is refused before it is built (fabric.plan.traffic);
        None: the kind bounds its own plan while planning."""
        return None

    def plan(self, ctx: PlanContext) -> TrafficPlan:
        """The workload's transfers on ctx.graph (SpecError naming a field for impossible
        groups; the caller adds the workload's key)."""
        raise NotImplementedError

    def summarise(self, records: Sequence[FlowRecord],
                  ctx: SummaryContext) -> WorkloadSummary | None:
        """Its section of the run summary from its own flow records (None: no section)."""
        return None


W = TypeVar("W", bound=Workload)
WORKLOADS: dict[str, type[Workload]] = {}


def register(cls: type[W]) -> type[W]:
    """Class decorator: make a Workload subclass loadable under the kind its `kind` field names."""
    hint = typing.get_type_hints(cls).get("kind")
    args = typing.get_args(hint)
    if typing.get_origin(hint) is not Literal or len(args) != 1:
        raise TypeError(f"{cls.__name__}.kind must be a Literal of one kind name")
    kind = str(args[0])
    if kind in WORKLOADS:
        raise ValueError(f"workload kind {kind!r} registered twice")
    WORKLOADS[kind] = cls
    return cls


def listed_hosts(field: str, hosts: tuple[str, ...]) -> list[tuple[str, str]]:
    """named_hosts() of a host list field: nothing for "all", else (field[j], host)."""
    return [] if hosts == ("all",) else [(f"{field}[{j}]", h) for j, h in enumerate(hosts)]


def require_positive(obj: object, key: str, *names: str) -> None:
    """SpecError naming `key`.<name> unless each named field is a finite number > 0."""
    for name in names:
        v = getattr(obj, name)
        if not (math.isfinite(v) and v > 0):
            raise SpecError(f"{key}.{name}", f"must be a number > 0, got {v!r}")
