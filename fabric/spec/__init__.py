"""Experiment files to typed, frozen specs: TOML parsing, units, workload and failure specs.

Pure: nothing here builds a network or plans traffic (fabric.plan does).
"""
