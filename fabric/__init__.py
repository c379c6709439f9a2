"""The engine: experiment spec, run orchestration, Mininet adapter, metrics, results, reports, CLI."""
