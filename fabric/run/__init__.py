"""Running an emulation: the engine, the Mininet/OVS adapter, agents, samplers, failure
injection, run directories, the run lock, cleanup, and `fabric compare`'s orchestration.

The only part of fabric/ that needs root, Mininet or Open vSwitch.
"""
