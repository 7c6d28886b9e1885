"""Run djaploy's remote command builders in a real local `sh`, with the programs they call
(curl, systemctl, gunicorn, ...) replaced by recording stand-ins on PATH.

A stand-in writes its argv (and what it was asked) to a log as JSON, so a test can check that
every value reached its program byte for byte, and that no injected command ran (the hostile
values below try to create MARKER files).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: values a user controls, each trying to run a command or break the quoting around it
HOSTILE = [
    "it's",
    'say "hi"',
    "$(touch MARKER)",
    "`touch MARKER`",
    "a; touch MARKER",
    "x && touch MARKER #",
    "$HOME ${IFS} \\ \\n",
    "new\tline' \"$(touch MARKER)\" '",
    "*",
    "-rf",
]

RECORDER = r'''#!PYTHON
import json, os, sys
with open(os.environ["RECORD_LOG"], "a") as log:
    log.write(json.dumps({"program": os.path.basename(sys.argv[0]), "argv": sys.argv[1:]}) + "\n")
'''

# curl: answers from a script of responses per URL (consumed in order; the last one repeats),
# honouring -o, -w '%{http_code} %{redirect_url}' and the exit code of a refused connection.
FAKE_CURL = r'''#!PYTHON
import json, os, sys
args = sys.argv[1:]
with open(os.environ["RECORD_LOG"], "a") as log:
    log.write(json.dumps({"program": "curl", "argv": args}) + "\n")
out = args[args.index("-o") + 1] if "-o" in args else None
url = args[-1]
state_file = os.environ["CURL_SCRIPT"]
with open(state_file) as f:
    script = json.load(f)
answers = script.get(url) or script.get("*") or [[0, ""]]
code, location = answers[0]
if len(answers) > 1:
    answers.pop(0)
    with open(state_file, "w") as f:
        json.dump(script, f)
if code == 0:
    sys.stdout.write("000 ")
    sys.stderr.write("curl: (7) Failed to connect\n")
    sys.exit(7)
if out:
    with open(out, "w") as f:
        f.write(f"body of {url}")
sys.stdout.write(f"{code} {location}")
'''


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    calls: list[dict]

    def argv_of(self, program: str) -> list[list[str]]:
        return [call["argv"] for call in self.calls if call["program"] == program]


class RecordingShell:
    """A temp folder with stand-ins on PATH; `run(command)` runs it in `sh -c` there."""

    def __init__(self, root: Path, programs: tuple[str, ...] = ("systemctl", "nginx", "caddy", "certbot",
                                                                  "litestream", "runuser", "sudo", "gunicorn")) -> None:
        self.root = root
        self.bin = root / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.log = root / "calls.jsonl"
        self.curl_script = root / "curl.json"
        self.curl_script.write_text("{}")
        for name in programs:
            self._install(name, RECORDER)
        self._install("curl", FAKE_CURL)

    def _install(self, name: str, text: str) -> None:
        path = self.bin / name
        path.write_text(text.replace("PYTHON", sys.executable, 1))
        path.chmod(0o755)

    def answers(self, script: dict[str, list[tuple[int, str]]]) -> None:
        """What the fake curl answers: URL -> [(status, redirect_url), ...]; status 0 = refused."""
        self.curl_script.write_text(json.dumps({url: [list(a) for a in seq] for url, seq in script.items()}))

    def run(self, command: str, timeout: float = 30) -> Run:
        if self.log.exists():
            self.log.unlink()
        env = {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}", "RECORD_LOG": str(self.log),
               "CURL_SCRIPT": str(self.curl_script)}
        proc = subprocess.run(["sh", "-c", command], cwd=self.root, env=env, capture_output=True, text=True,
                              timeout=timeout)
        calls = [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []
        return Run(proc.returncode, proc.stdout, proc.stderr, calls)

    def injected(self) -> list[Path]:
        """Files an injected `touch MARKER` would have made (in the folder sh ran in, or anywhere below)."""
        return sorted(self.root.rglob("MARKER*"))
