"""Which provider a host gets: "auto" means the OS package when the OS has that version, else uv.

The probes are read-only commands (they run in a dry run and in `verify --remote` too); the
choice itself is pure.
"""

from __future__ import annotations

from djaploy import shell

#: prints the interpreter's full version (3.13.5)
PRINT_VERSION = "import sys; print('%d.%d.%d' % sys.version_info[:3])"


def system_packages(version: str) -> tuple[str, str]:
    """The OS packages of the system provider: the interpreter, and venv support for it."""
    return f"python{version}", f"python{version}-venv"


def apt_has_command(version: str) -> str:
    """Prints apt=yes when the OS's package sources carry python3.X (with venv support)."""
    return (f"if apt-cache show {shell.join(system_packages(version))} >/dev/null 2>&1; "
            "then echo apt=yes; else echo apt=no; fi")


def system_version_command(version: str) -> str:
    """Prints the system python3.X's full version (nothing when it is not installed)."""
    python = shell.q(f"/usr/bin/python{version}")
    return f"if [ -x {python} ]; then {python} -c {shell.q(PRINT_VERSION)}; fi"


def choose(provider: str, apt_has_version: bool) -> str:
    """The provider a host uses: `provider` itself unless it is "auto"."""
    if provider != "auto":
        return provider
    return "system" if apt_has_version else "uv"
