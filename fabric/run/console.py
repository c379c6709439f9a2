"""`fabric up`'s prompt: Mininet's own CLI (h1 ping h3, iperf, dump, links, ...) plus ours.

    workload [NAME]    list the file's workloads / start one in the background
    fail A B | fail S  take a fabric link (or every link of a spine/NCF) down
    restore A B | S    bring it back up
    controller         the controller's state: per switch its flows and groups, bucket counters
    paths              the path each flow of the last workload hashed to, and the collisions
    util               link utilisation now, as text (for SSH users without a browser)
    live               the live view's URL

Leaving: `exit`, Ctrl-D, Ctrl-C at an empty prompt (Ctrl-C during a command only stops the
command, as in Mininet), a closed terminal (SIGHUP) or SIGTERM; fabric.run.session then tears
everything down.
"""
from __future__ import annotations

from typing import Any

from mininet.cli import CLI



class FabricCLI(CLI):
    """Mininet's CLI with the session's commands; the prompt says it is ours."""

    prompt = "fabric> "

    def __init__(self, mininet: Any, session: Any, **kwargs: Any):
        """`session`: the fabric.run.session.Session behind our commands."""
        from mininet import log as mnlog
        self.session = session
        self._busy = False
        mnlog.setLogLevel("output")   # the engine keeps Mininet quiet; its commands print here
        try:
            super().__init__(mininet, **kwargs)
        finally:
            mnlog.setLogLevel("error")

    # ------------------------------------------------------------ loop
    def run(self) -> None:
        """Mininet's loop, except that Ctrl-C at an idle prompt leaves (and tears down)."""
        while True:
            try:
                for node in self.mn.values():   # as Mininet: no node left mid-command
                    while node.waiting:
                        node.sendInt()
                        node.waitOutput()
                self._busy = False
                self.cmdloop()
                break
            except KeyboardInterrupt:
                if self._busy:
                    self.stdout.write("\nInterrupted\n")
                    continue
                self.stdout.write("\nCtrl-C: leaving\n")
                break

    def precmd(self, line: str) -> str:
        self._busy = True
        return super().precmd(line)

    def postcmd(self, stop: bool, line: str) -> bool:
        self._busy = False
        return stop

    def _say(self, text: str) -> None:
        self.stdout.write(text.rstrip("\n") + "\n")

    def _run(self, fn: Any, *args: Any) -> None:
        try:
            self._say(fn(*args))
        except ValueError as exc:
            self._say(f"*** {exc}")

    # ------------------------------------------------------------ our commands
    def do_workload(self, line: str) -> None:
        """workload [NAME]: list the experiment's workloads, or start NAME in the background
        (its flows, paths and progress show in `paths`, `util` and the live view)."""
        self._run(self.session.start_workload if line.strip() else self.session.workloads,
                  *([line.strip()] if line.strip() else []))

    def do_fail(self, line: str) -> None:
        """fail A B | fail S: take the fabric link A-B (or every link of switch S) down; the
        controller sees the port-status and re-routes."""
        self._run(self.session.set_links, line.split(), False)

    def do_restore(self, line: str) -> None:
        """restore A B | restore S: bring the link (or the switch's links) back up."""
        self._run(self.session.set_links, line.split(), True)

    def do_controller(self, line: str) -> None:
        """controller: the policy's installed state per switch (flows, groups, bucket
        counters) and the controller's recent decisions."""
        self._run(self.session.controller_state)

    def do_paths(self, line: str) -> None:
        """paths: which path each flow of the last workload took, and which flows collided."""
        self._run(self.session.paths_text)

    def do_util(self, line: str) -> None:
        """util: every link direction's utilisation over the last 0.25 s, as text."""
        self._run(self.session.util_text)

    def do_live(self, line: str) -> None:
        """live: the URL of the live view (open it in a browser on this machine, or through
        `ssh -L PORT:127.0.0.1:PORT`)."""
        self._run(self.session.live_text)
