"""Release notes from the commits a release adds: simple, by an LLM, or by the user's own function.

`simple` lists commit subjects (merge commits left out, fixups folded into what they fix),
bounded. `llm` asks any OpenAI-compatible chat-completions endpoint; on any error it falls
back to `simple` and says why in a warning (the API key never appears in it). A dotted path
names a callable taking the commits (a list of `Commit`) and returning the text.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from djaploy.dotted import load_callable
from djaploy.release_settings import ChangelogSettings

FIXUP_RE = re.compile(r"^(fixup|squash|amend)! +")
DEFAULT_PROMPT = (
    "Write short release notes for version {version} of {project}: one line per user-visible change, "
    "as a plain-text bullet list starting with '- ', no introduction. The commits:\n{commits}"
)


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    author: str = ""
    merge: bool = False


@dataclass(frozen=True)
class Changelog:
    text: str
    warnings: tuple[str, ...] = ()


def simple(commits: Sequence[Commit], max_commits: int = 50) -> str:
    """One '- subject' line per change, newest first; merges left out, fixups folded, at most max_commits."""
    subjects: list[str] = []
    for commit in commits:
        if commit.merge:
            continue
        subject = FIXUP_RE.sub("", commit.subject).strip()
        while FIXUP_RE.match(subject):
            subject = FIXUP_RE.sub("", subject).strip()
        if subject and subject not in subjects:
            subjects.append(subject)
    if not subjects:
        return "- no changes since the previous version"
    lines = [f"- {subject}" for subject in subjects[:max_commits]]
    if len(subjects) > max_commits:
        lines.append(f"- … and {len(subjects) - max_commits} more")
    return "\n".join(lines)


def _completions_url(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else f"{url}/chat/completions"


def llm(commits: Sequence[Commit], settings: ChangelogSettings, *, version: str, project: str) -> str:
    """Ask the endpoint; raises on anything but a well-formed non-empty answer."""
    assert settings.url and settings.model
    listing = simple(commits, settings.max_commits)
    prompt = (settings.prompt or DEFAULT_PROMPT).format(version=version, project=project, commits=listing)
    body = json.dumps({"model": settings.model, "messages": [{"role": "user", "content": prompt}]}).encode()
    headers = {"Content-Type": "application/json"}
    if settings.api_key:
        headers["Authorization"] = f"Bearer {settings.api_key}"
    request = urllib.request.Request(_completions_url(settings.url), data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=settings.timeout) as response:
        answer = json.loads(response.read())
    text = answer["choices"][0]["message"]["content"]
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the answer holds no text")
    return text.strip()


def _reason(error: BaseException, secret: str | None) -> str:
    if isinstance(error, urllib.error.HTTPError):
        text = f"HTTP {error.code}"
    elif isinstance(error, urllib.error.URLError):
        text = f"cannot reach it ({error.reason})"
    elif isinstance(error, (KeyError, IndexError, TypeError, json.JSONDecodeError)):
        text = "its answer is not a chat completion"
    else:
        text = f"{type(error).__name__}: {error}"
    return text.replace(secret, "********") if secret else text


def write_changelog(settings: ChangelogSettings, commits: Sequence[Commit], *, version: str, project: str,
                    root: str | None = None) -> Changelog:
    """The release notes for `commits`; the user's generator's errors are not hidden, llm's fall back."""
    if settings.generator == "simple":
        return Changelog(simple(commits, settings.max_commits))
    if settings.generator == "llm":
        try:
            return Changelog(llm(commits, settings, version=version, project=project))
        except Exception as error:  # noqa: BLE001 - any failure of the endpoint falls back to simple
            warning = (f"changelog: the llm endpoint failed ({_reason(error, settings.api_key)}); "
                       "used the simple changelog instead")
            return Changelog(simple(commits, settings.max_commits), (warning,))
    generate: Callable[[list[Commit]], str] = load_callable(settings.generator, field="versioning['changelog']",
                                                            root=root)
    text = generate(list(commits))
    if not isinstance(text, str):
        raise TypeError(f"changelog generator {settings.generator} returned {type(text).__name__}, not text")
    return Changelog(text.strip())
