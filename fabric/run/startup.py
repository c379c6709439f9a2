"""The controller and the emulated network, created and started in the one order that works;
shared by the engine and the benchmarks so both measure the same start-up.

Order: the controller process first, then wait until its OpenFlow socket listens (a switch that
finds nothing listening backs off ~1 s before retrying), then Mininet and OVS; then wait until
the controller reports every switch installed, for at most ready_timeout_s(graph).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import networkx as nx

from controller.policies import make_policy
from controller.process import ControllerProcess
from topologies import model

from fabric.run import registry
from fabric.run.emulation import EmulatedNetwork

LISTEN_TIMEOUT_S = 15.0


def ready_timeout_s(graph: nx.Graph) -> float:
    """How long the controller may take to install every switch: 30 s + 0.5 s per switch."""
    return 30 + 0.5 * len(model.switches(graph))


def make_fabric(graph: nx.Graph, policy: str, params: dict[str, Any], datapath: str,
                workdir: Path, run_dir: Path | None = None, slow_start_after_idle: bool = False,
                network: Callable[..., EmulatedNetwork] = EmulatedNetwork
                ) -> tuple[ControllerProcess, EmulatedNetwork]:
    """The controller process (reading workdir/fabric.json, written here) and the network,
    shaped with the policy's egress queue classes (e.g. `priority`), its hosts with
    net.ipv4.tcp_slow_start_after_idle as given; nothing started yet. `network`: the class
    (fabric.run.cluster.ClusterNetwork, bound to its servers, for cluster mode)."""
    fabric_file = workdir / "fabric.json"
    if not fabric_file.exists():
        fabric_file.write_text(json.dumps(model.to_description(graph), indent=1))
    ctl = ControllerProcess(fabric_file, policy, params, workdir / "controller.log",
                            run_dir=run_dir)
    classes = make_policy(policy, graph, params).queue_classes()
    return ctl, network(graph, ctl.port, datapath, workdir, classes=classes,
                                slow_start_after_idle=slow_start_after_idle)


def bring_up(ctl: ControllerProcess, net: EmulatedNetwork) -> None:
    """Start the controller; build the network while it starts (hosts, links: no controller
    needed); wait until it listens; start the network (switches connect)."""
    ctl.start()
    registry.register(pids=[ctl.pid])  # fabric clean finds it if this run is killed
    net.build()
    ctl.wait_listening(timeout_s=LISTEN_TIMEOUT_S)
    net.start()
