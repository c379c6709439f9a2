"""Project errors. A SpecError is bad input: the CLI prints it and exits 2, before anything is built."""


class FabricError(Exception):
    """Base of every error this project raises on purpose."""


class SpecError(FabricError):
    """An experiment spec (or plan) is invalid; `key` names the offending key path."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"{key}: {message}" if key else message)


class RunError(FabricError):
    """An emulation run failed (controller died, agents timed out, ...)."""
