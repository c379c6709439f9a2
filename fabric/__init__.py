"""The engine: spec -> plan -> run -> analysis -> report (docs/architecture.md), and the `fabric` CLI."""
