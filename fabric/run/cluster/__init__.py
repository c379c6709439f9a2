"""Cluster mode: the fabric split over several servers with Mininet Cluster Edition's mechanics.

    head (the engine, the controller on 127.0.0.1)
      │ ssh (shared connections: one master per server)
      │ ssh -N -R <port>:127.0.0.1:<port>   each server's switches reach the controller on
      ▼                                      their own 127.0.0.1: nothing listens on the LAN
    server k: RemoteHost / RemoteOVSSwitch (mininet.examples.cluster), its part of the fabric;
              links between servers are kernel VXLAN (or gretap, or Cluster Edition's ssh taps)

Modules: `ssh` (reaching servers: addresses, checks, clocks, reverse forwards), `network`
(ClusterNetwork: Cluster Edition's classes, fixed, and the lifecycle on every server), `record`
(cluster.json, tunnel RTTs, the engine's entry points).
"""
from fabric.run.cluster.network import ClusterNetwork
from fabric.run.cluster.record import cluster_network, host_clock_offsets, record_tunnels
from fabric.run.cluster.ssh import Server, remote_agent_prefix, remote_python

__all__ = ["ClusterNetwork", "Server", "cluster_network", "host_clock_offsets", "record_tunnels", "remote_agent_prefix",
           "remote_python"]
