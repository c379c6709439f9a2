"""`spray`: per-packet spraying on a leaf/spine. Leaves send every packet bound for another leaf
round-robin over their spine uplinks; spines forward by destination, as in `ecmp`.

What it models: the packet-spraying direction of current AI Ethernet (the leaf spreads each
flow's packets over all uplinks; the receiver's transport absorbs the reordering). Same
mechanism as `ddc` (controller.policies.spraying): an nftables hook per host port, and OVS
drop rules for the copies its userspace datapath also sees.
"""
from __future__ import annotations

from controller.policies import register
from controller.policies.spraying import SprayingPolicy


@register("spray")
class SprayPolicy(SprayingPolicy):
    """Spraying at every leaf."""

    SPRAY_ROLE = "leaf"
