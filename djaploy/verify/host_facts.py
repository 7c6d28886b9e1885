"""verify --remote: per host, SSH, passwordless sudo, then one read-only round trip for the OS and
the Pythons, and the findings from those facts (the parsing and the findings are pure: unit tested)."""

from __future__ import annotations

import io
import re
import subprocess
from collections.abc import Mapping, Sequence

from djaploy.config import Target
from djaploy.errors import ConnectError
from djaploy.verify.findings import Finding, Report

SUPPORTED_OS = ("debian", "ubuntu")


def parse_facts(output: str) -> dict[str, str]:
    """key=value lines of FACTS_COMMAND's output."""
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


def facts_command(target: Target) -> str:
    """One read-only round trip (run as root): who we are, the OS, the Pythons, the app's recorded one."""
    from djaploy import shell
    from djaploy.layout import AppPaths
    from djaploy.python.choice import apt_has_command
    from djaploy.python.record import record_path

    python_version = target.python_version
    python = shell.q(f"python{python_version}")
    record = shell.q(record_path(AppPaths.for_target(target).meta_dir))
    return (
        "echo uid=$(id -u); if [ -r /etc/os-release ]; then . /etc/os-release; fi; "
        'echo "os_id=${ID:-}"; echo "os_like=${ID_LIKE:-}"; echo "os_name=${PRETTY_NAME:-}"; '
        f'echo "python=$(command -v {python} || true)"; '
        f"if {python} -c 'import ensurepip, venv' >/dev/null 2>&1; then echo venv=yes; else echo venv=no; fi; "
        "echo \"python3=$(python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])' 2>/dev/null)\"; "
        "echo \"python3_apt=$(apt-cache policy python3 2>/dev/null | sed -n 's/^ *Candidate: *//p')\"; "
        f"{apt_has_command(python_version)}; echo \"record=$(head -n 1 {record} 2>/dev/null)\""
    )


def _os_has(facts: Mapping[str, str], want: str) -> bool:
    """The OS provides python{want}: installed, its python3, or in its apt sources."""
    system = _major_minor(facts.get("python3", "")) or _major_minor(facts.get("python3_apt", ""))
    return bool(facts.get("python")) or system == want or facts.get("apt") == "yes"


def python_plan(facts: Mapping[str, str], target: Target) -> str:
    """Which provider and version the host would use, and what it has now (pure; unit tested)."""
    from djaploy.python.choice import choose
    from djaploy.python.record import parse_record
    from djaploy.python.settings import python_settings

    settings = python_settings(target)
    provider = choose(settings.provider, _os_has(facts, settings.version))
    wants = {"system": f"python{settings.version} from the OS",
             "uv": f"uv's newest CPython {settings.version}" + (
                 f" from {settings.downloads_json_url or settings.install_mirror}"
                 if settings.downloads_json_url or settings.install_mirror else ""),
             "source": f"CPython {settings.source.version if settings.source else '?'} built from python_source"}
    recorded = parse_record(facts.get("record", ""), settings.version, "auto")
    if isinstance(recorded, str):
        now = "; not provided yet (configureserver provides it)"
    else:
        now = f"; now Python {recorded.version} ({recorded.provider})"
        if recorded.provider != provider:
            now += ": configureserver replaces it"
    return f"python: {provider} ({wants[provider]}){now}"


def _major_minor(version: str) -> str:
    """ "3.11.2-1+b1" or "3.11" -> "3.11"; "" when not a version."""
    match = re.match(r"^(?:\d+:)?(\d+\.\d+)", version.strip())
    return match.group(1) if match else ""


def remote_findings(facts: Mapping[str, str], target: Target, where: str) -> list[Finding]:
    """Findings from one host's facts (pure; unit tested)."""
    findings = []
    if facts.get("uid") != "0":
        findings.append(Finding("E010", where, f"commands run with sudo as {target.ssh_user} are not root "
                                f"(uid {facts.get('uid')!r})", f"give {target.ssh_user} sudo rights to run any command as root"))
    os_id, like = facts.get("os_id", ""), facts.get("os_like", "").split()
    os_name = facts.get("os_name") or os_id or "an unknown system"
    if os_id not in SUPPORTED_OS:
        if set(like) & set(SUPPORTED_OS):
            findings.append(Finding("W007", where, f"{os_name} is Debian-based but neither Debian nor Ubuntu; "
                                    "djaploy is tested on those", "use Debian 12, Debian 13 or Ubuntu 24.04 if a step fails"))
        else:
            findings.append(Finding("E011", where, f"{os_name} is neither Debian nor Ubuntu; djaploy installs its "
                                    "packages with apt and runs the app with systemd", "use a Debian 12, Debian 13 or Ubuntu 24.04 host"))
    if target.python_provider == "system" and facts.get("apt") != "yes":
        findings += _system_python_findings(facts, target.python_version, where)
    return findings


def _system_python_findings(facts: Mapping[str, str], want: str, where: str) -> list[Finding]:
    """python_provider="system" on an OS without python{want}: the other providers bring their own."""
    system = _major_minor(facts.get("python3", "")) or _major_minor(facts.get("python3_apt", ""))
    if facts.get("python"):
        if facts.get("venv") != "yes" and system != want:
            return [Finding("E012", where, f"python{want} is on the host but cannot create virtualenvs "
                            "(no ensurepip/venv)", f"install python{want}-venv on the host")]
    elif system != want:
        has = f"its python3 is {system}" if system else "it has no python3 package"
        fix = f"set python_version={system!r} in config.py, or python_provider='uv' or 'source' (docs/python.md)" \
            if system else "install python3 on the host (apt-get install python3)"
        return [Finding("E012", where, f"python{want} (python_version) is not on the host and {has}", fix)]
    return []


def check_hosts(targets: Sequence[tuple[str, Target]], report: Report) -> None:
    """One host at a time: each gets its own connection, so one unreachable host hides nothing."""
    for env, target in targets:
        where = f"{env}/{target.name}"
        found, facts = _host_findings(target, where)
        report.findings += found
        if not found:
            report.passed.append(f"[{where}] ssh {target.ssh_user}@{target.ssh_host}:{target.ssh_port} ok, "
                                 f"{'root' if target.ssh_user == 'root' else 'passwordless sudo'}, "
                                 f"{facts.get('os_name')}, {python_plan(facts, target)}")


def _host_findings(target: Target, where: str) -> tuple[list[Finding], dict[str, str]]:
    from djaploy.engine import Engine
    from djaploy.output import Reporter
    from djaploy.redact import Redactor

    engine = Engine([target], Reporter(out=io.StringIO(), redact=Redactor(target.secrets.values())))
    try:
        try:
            engine.connect()
        except ConnectError as error:
            reason = str(error).splitlines()[0].removeprefix(f"[{target.name}] ")
            return [Finding("E009", where, reason, "check the host is up and its ssh_host, ssh_port, "
                            "ssh_user and ssh_key in the inventory; try: ssh -p PORT USER@HOST")], {}
        if target.ssh_user != "root":
            problem = _sudo_problem(target)
            if problem:
                return [Finding("E010", where, f"{target.ssh_user} cannot run sudo without a password: {problem}",
                                f"as root on the host: echo '{target.ssh_user} ALL=(ALL) NOPASSWD:ALL' > "
                                f"/etc/sudoers.d/{target.ssh_user} && chmod 440 /etc/sudoers.d/{target.ssh_user}; "
                                "or connect as root (ssh_user='root')")], {}
        result = engine.plan_for(target).query(facts_command(target))
        if not result.ok:
            return [Finding("E009", where, f"reading the host's system facts failed: {result.stderr.strip()[-500:]}",
                            "run the command by hand over ssh to see why; the host must run a POSIX shell")], {}
        facts = parse_facts(result.stdout)
        return remote_findings(facts, target, where), facts
    finally:
        engine.disconnect()


def _sudo_problem(target: Target) -> str | None:
    """Ask sudo itself, non-interactively (pyinfra would prompt for a password instead of failing)."""
    from djaploy.remote import SSH_FAILED, ssh_argv

    try:
        result = subprocess.run(ssh_argv(target, "sudo -n true"), check=False, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=60)
    except FileNotFoundError:
        return "the ssh client is not installed here to ask (apt-get install openssh-client)"
    except subprocess.TimeoutExpired:
        return "no answer within 60s"
    if result.returncode == 0:
        return None
    stderr = result.stderr.strip() or f"exit {result.returncode}"
    return f"ssh failed: {stderr}" if result.returncode == SSH_FAILED else stderr
