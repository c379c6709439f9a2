"""`ddc`: the disaggregated chassis. Ingress NCPs spray every fabric-bound packet over all their
NCF links; NCFs forward towards the egress NCP; the egress NCP delivers to the host port.

What it models: a DDC's cell spraying over all fabric links (here whole packets, round-robin,
per ingress port; see docs/ddc.md for what is emulated, approximated and left out). The
mechanism is shared with `spray` (controller.policies.spraying).
"""
from __future__ import annotations

from typing import Any, ClassVar

import networkx as nx

from topologies.errors import SpecError

from controller.policies import register
from controller.policies.spraying import SprayingPolicy


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
