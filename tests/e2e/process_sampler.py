"""Every process list of some sandbox hosts while a command runs: how the tests prove a secret is
never on any process's command line (argv is readable by every user of a host)."""

from __future__ import annotations

import subprocess
import threading


class ProcessSampler:
    """`ps -eo args` on every host, over and over, in one SSH session per host, until stopped."""

    LOOP = "while :; do ps -eo args; echo @@sample@@; sleep 0.2; done"

    def __init__(self, hosts) -> None:
        self.processes = {host.name: subprocess.Popen([*host.ssh_command(), self.LOOP], stdout=subprocess.PIPE,
                                                      stderr=subprocess.DEVNULL, text=True, errors="replace")
                          for host in hosts}
        self.output: dict[str, set[str]] = {name: set() for name in self.processes}  # every line seen
        self.threads = [threading.Thread(target=self._read, args=(name,), daemon=True) for name in self.processes]
        for thread in self.threads:
            thread.start()

    def _read(self, name: str) -> None:
        stdout = self.processes[name].stdout
        assert stdout is not None
        for line in stdout:
            self.output[name].add(line.rstrip("\n"))

    def stop(self) -> dict[str, set[str]]:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            process.wait(timeout=30)
        for thread in self.threads:
            thread.join(timeout=30)
        return self.output
