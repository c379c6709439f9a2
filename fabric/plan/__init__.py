"""Specs to plans: the deterministic traffic plan and failure actions of an experiment on one
fabric model, and the end-to-end check (`fabric.plan.experiment.load_experiment`). Pure.
"""
