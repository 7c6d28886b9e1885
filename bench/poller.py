"""A poller that reads the version marker all through a step: when the other version first
answered, and from when on only it answers (what "serves" means in bench/: the same for
djaploy, the floor and the peer, whatever the command's own return time says)."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request

POLL_INTERVAL = 0.05
STEADY_POLLS = 20  # a version "serves" once this many polls in a row (about 1 s) see only it


class Poller:
    """One client reading the version marker every POLL_INTERVAL s, on a fresh connection each time."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples: list[tuple[float, str]] = []  # (monotonic time, body or "error: ...")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            at = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=2) as answer:
                    body = answer.read().decode(errors="replace").strip()
            except (urllib.error.URLError, OSError) as error:
                body = f"error: {type(error).__name__}"
            self.samples.append((at, body))
            self._stop.wait(max(0.0, POLL_INTERVAL - (time.monotonic() - at)))

    def steady_since(self, version: str) -> float | None:
        """Start of the final run of answers that are all `version`, once it is STEADY_POLLS long."""
        run_start, count = None, 0
        for at, body in list(self.samples):
            if body == version:
                run_start, count = (run_start if count else at), count + 1
            else:
                run_start, count = None, 0
        return run_start if count >= STEADY_POLLS else None

    def first_seen(self, version: str, after: float) -> float | None:
        return next((at for at, body in list(self.samples) if at >= after and body == version), None)

    def change(self, started: float) -> tuple[str | None, float | None, float | None]:
        """(the version that replaced the one answering at `started`, when it first answered,
        from when on only it answered); Nones when nothing else answered steadily."""
        samples = list(self.samples)
        before = next((body for at, body in reversed(samples) if at <= started and not body.startswith("error")), None)
        final = samples[-1][1] if samples else None
        if final is None or final == before or final.startswith("error"):
            return None, None, None
        return final, self.first_seen(final, started), self.steady_since(final)
