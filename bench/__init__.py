"""Benchmarks of the emulator itself, run by hand (`python -m bench.<name>`); not tests."""
