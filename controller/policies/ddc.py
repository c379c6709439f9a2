"""`ddc`: the disaggregated chassis. Ingress NCPs spray every fabric-bound packet over all their
NCF links; NCFs forward towards the egress NCP; the egress NCP delivers to the host port.

What it models: a DDC's cell spraying over all fabric links (here whole packets, round-robin,
per NCP; see docs/ddc.md for what is emulated, approximated and left out). The mechanism is
shared with `spray` (controller.policies.spraying). With `scheduler = "credits"` the host ports
hand fabric-bound packets to the NCP's VOQs instead (topologies.ddc), and the spraying (with
the sequence stamp for the egress reassembly) happens where the VOQs release them.
"""
from __future__ import annotations

from typing import Any, ClassVar

import networkx as nx

from topologies.ddc import reassembling, scheduled, voq_intfs
from topologies.errors import SpecError
from topologies.model import intf_name

from controller import ofmsgs
from controller.nftables import voq_ruleset
from controller.policies import register
from controller.policies.base import Msg
from controller.policies.ecmp import IPV4
from controller.policies.spraying import SPRAY_COOKIE, SPRAY_DROP_PRIORITY, SprayingPolicy


@register("ddc")
class DDCPolicy(SprayingPolicy):
    """Spraying at every NCP (topologies.ddc fabrics only)."""

    SPRAY_ROLE = "ncp"
    # an NCP deals its fabric-bound packets round-robin over its NCF links as one device (all
    # host ports share the counter), as a chassis line card sprays cells; see docs/ddc.md
    PARAMS: ClassVar[dict[str, Any]] = {**SprayingPolicy.PARAMS, "counter": "switch"}

    def __init__(self, graph: nx.Graph, params: dict[str, Any] | None = None):
        if graph.graph.get("kind") != "ddc":
            raise SpecError("policy", f"policy 'ddc' needs a ddc fabric, got a "
                                      f"{graph.graph.get('kind')!r} fabric (use 'spray' on "
                                      "leaf/spine)")
        super().__init__(graph, params)

    def nft_ruleset(self, switch: str) -> str | None:
        if not scheduled(self.full_graph) or switch not in self.sprayers:
            return super().nft_ruleset(switch)
        in_intfs = {p: intf_name(switch, p) for p in self.sprayers[switch]}
        local = {self.graph.nodes[h]["ip"]: in_intfs[p] for p, h in self.sprayers[switch].items()}
        voq_in, voq_out = voq_intfs(switch)
        return voq_ruleset(switch, in_intfs, voq_in, voq_out, local, self.remote_ips(switch),
                           self.spray_rules(switch), self.params["numgen"],
                           stamp=reassembling(self.full_graph))

    def switch_state(self, dp: Any, switch: str, now: float) -> list[Msg]:
        """With VOQs, traffic between two hosts of one NCP also takes the kernel path (through
        the VOQs): OVS drops its copy of that too (see SprayingPolicy for why copies exist)."""
        msgs = super().switch_state(dp, switch, now)
        if not scheduled(self.full_graph) or switch not in self.sprayers:
            return msgs
        ports = self.sprayers[switch]
        for port in sorted(ports):
            for other, host in sorted(ports.items()):
                if other != port:
                    msgs.append(ofmsgs.flow_add(
                        dp, SPRAY_DROP_PRIORITY, {"in_port": port, "eth_type": IPV4,
                                                  "ipv4_dst": self.graph.nodes[host]["ip"]},
                        [], cookie=SPRAY_COOKIE))
        return msgs
