"""The engine: spec -> plan -> run -> analysis -> report (docs/architecture.md), and the `fabric` CLI."""
# The workload kinds register themselves (fabric.spec.workload.WORKLOADS) on import; importing
# them here, first, completes the registry before anything parses a spec.
from fabric import workloads as _workloads  # noqa: F401
