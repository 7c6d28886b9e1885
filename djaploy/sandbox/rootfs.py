"""Root filesystems: one cached debootstrap base per release, one copy-on-write layer per VPS.

Each release's base (bookworm, trixie) is built once (about 2.5 minutes), kept as a tarball
(the durable cache) plus an extracted tree (the overlay's lower layer), and never modified
afterwards: everything that makes a VPS an individual host goes into that host's upper layer
(or its private copy).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from . import settings
from ._run import run, tail
from .errors import SandboxError
from .locks import file_lock
from .mounts import mounts_under, unmount_under

log = logging.getLogger("djaploy.sandbox")


@dataclass
class RootfsPaths:
    """Where a VPS's root lives; `root` is what systemd-nspawn boots (-D)."""

    mode: str  # "overlay" or "copy"
    root: str
    lower: str = ""
    upper: str = ""
    work: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> RootfsPaths:
        return cls(**data)


# ---------------------------------------------------------------- the shared cache


def tarball_name(suite: str) -> str:
    """bookworm-minbase.tar: named after the suite, so each release has its own cache."""
    return f"{suite}-minbase.tar"


def tarball_path(suite: str, cache: Path | None = None) -> Path:
    """The durable cache of one release: a tar of its freshly debootstrapped tree."""
    return (cache or settings.cache_dir()) / tarball_name(suite)


def _base_key(tarball: Path) -> str:
    """Names the extracted base after the tarball it came from, so a rebuilt tarball never
    reuses (or overwrites) a base that running overlays still use as their lower layer."""
    st = tarball.stat()
    return f"{st.st_ino:x}-{st.st_mtime_ns:x}"


def _scrub_base(rootfs: Path) -> None:
    """Remove what must differ per host (SSH host keys, machine-id) and downloaded .debs."""
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    machine_id = rootfs / "etc/machine-id"
    if machine_id.exists():
        machine_id.write_text("")
    for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()


def _debootstrap(suite: str, target: Path, logfile: Path) -> None:
    """Build a minbase tree of `suite` with exactly the recipe's package set."""
    args = [
        "debootstrap",
        "--variant=minbase",
        "--include=" + ",".join(settings.INCLUDE_PACKAGES),
        suite,
        str(target),
        settings.mirror(),
    ]
    log.info("building the base root filesystem (debootstrap, a few minutes): %s", " ".join(args))
    with logfile.open("w") as out:
        try:
            proc = subprocess.run(
                args, check=False, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        except FileNotFoundError as exc:
            raise SandboxError("debootstrap is not installed: apt-get install -y debootstrap") from exc
    if proc.returncode != 0:
        detail = tail(logfile.read_text(errors="replace"))
        inner = target / "debootstrap/debootstrap.log"
        if inner.exists():
            detail += "\n--- debootstrap.log ---\n" + tail(inner.read_text(errors="replace"))
        raise SandboxError(f"debootstrap failed ({proc.returncode}); log {logfile}:\n{detail}")


def _tar_create(src: Path, dest: Path) -> None:
    """Tar with numeric owners and xattrs so an extract gives back the identical tree."""
    run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", str(src), "-cf", str(dest), "."])


def _tar_extract(src: Path, dest: Path) -> None:
    run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", str(dest), "-xpf", str(src)])


def _remove_tree(path: Path) -> None:
    """rmtree that first unmounts anything left below (debootstrap mounts /proc in its target)."""
    if path.exists():
        unmount_under(path)
        shutil.rmtree(path, ignore_errors=True)


def ensure_base(suite: str) -> Path:
    """Return the extracted base tree of `suite`, building its tarball and/or extracting it when missing.

    Work happens in a temp dir inside the cache and is renamed into place at the end, so an
    interrupted build never leaves something that looks like a usable cache.
    """
    cache = settings.cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with file_lock(cache / ".lock"):
        for stale in cache.glob(".build-*"):  # builds only run under this lock: these are dead
            _remove_tree(stale)
        tarball = tarball_path(suite, cache)
        built_tree: Path | None = None
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
        try:
            if not tarball.exists():
                built_tree = work / "rootfs"
                _debootstrap(suite, built_tree, cache / f"debootstrap-{suite}.log")
                _scrub_base(built_tree)
                _tar_create(built_tree, work / tarball.name)
                os.rename(work / tarball.name, tarball)
            base = cache / f"base-{_base_key(tarball)}"
            if not base.is_dir():
                if built_tree is None:
                    log.info("extracting the cached base %s", tarball)
                    built_tree = work / "rootfs"
                    built_tree.mkdir()
                    _tar_extract(tarball, built_tree)
                built_tree.chmod(0o755)
                os.rename(built_tree, base)
            return base
        finally:
            _remove_tree(work)


# ---------------------------------------------------------------- one VPS's root


def _overlay_options(lower: Path, upper: Path, work: Path) -> str | None:
    """mount(8) option string, or None when a path would break its comma/colon syntax."""
    paths = [str(lower), str(upper), str(work)]
    if any(ch in p for p in paths for ch in ",:"):
        return None
    return f"lowerdir={lower},upperdir={upper},workdir={work}"


def planned_overlay(host_dir: Path, base: Path) -> RootfsPaths:
    """The overlay paths for a host, recorded in the state before anything is mounted."""
    return RootfsPaths(
        mode="overlay",
        root=str(host_dir / "root"),
        lower=str(base),
        upper=str(host_dir / "upper"),
        work=str(host_dir / "work"),
    )


def create_rootfs(host_dir: Path, base: Path) -> RootfsPaths:
    """Mount an overlay over the base; fall back to a full copy if overlayfs is refused."""
    paths = planned_overlay(host_dir, base)
    for part in (paths.upper, paths.work, paths.root):
        Path(part).mkdir(parents=True, exist_ok=True)
    # The upper dir's owner and mode become those of "/" in the VPS: non-root users need 0755.
    Path(paths.upper).chmod(0o755)
    options = _overlay_options(base, Path(paths.upper), Path(paths.work))
    if options is not None:
        proc = run(["mount", "-t", "overlay", "overlay", "-o", options, paths.root], check=False)
        if proc.returncode == 0:
            return paths
        log.warning("overlay mount failed (%s); copying the base instead", proc.stderr.strip())
    for part in (paths.upper, paths.work):
        shutil.rmtree(part, ignore_errors=True)
    Path(paths.root).rmdir()
    run(["cp", "-a", "--reflink=auto", str(base), paths.root])
    return RootfsPaths(mode="copy", root=paths.root)


def remove_rootfs(host_dir: Path) -> None:
    """Unmount (overlay) and delete a host's root; refuses to delete through a live mount."""
    unmount_under(host_dir)
    if mounts_under(host_dir):
        raise SandboxError(f"{host_dir} is still mounted; not deleting it")
    shutil.rmtree(host_dir, ignore_errors=True)


# ---------------------------------------------------------------- per-host contents


def hosts_file(hostname: str) -> str:
    """/etc/hosts with the 127.0.1.1 line sudo needs to resolve the host's own name."""
    return (
        "127.0.0.1\tlocalhost\n"
        f"127.0.1.1\t{hostname}\n"
        "::1\t\tlocalhost ip6-localhost ip6-loopback\n"
        "ff02::1\t\tip6-allnodes\n"
        "ff02::2\t\tip6-allrouters\n"
    )


CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def environment_file(proxy_url: str) -> str:
    """/etc/environment: read by sshd's PAM session, so every SSH command sees the proxy
    and tools that ignore the system CA store (uv, requests) still trust the egress CA."""
    return (
        f"http_proxy={proxy_url}\n"
        f"https_proxy={proxy_url}\n"
        f"HTTP_PROXY={proxy_url}\n"
        f"HTTPS_PROXY={proxy_url}\n"
        "no_proxy=localhost,127.0.0.1\n"
        "NO_PROXY=localhost,127.0.0.1\n"
        f"SSL_CERT_FILE={CA_BUNDLE}\n"
        f"REQUESTS_CA_BUNDLE={CA_BUNDLE}\n"
    )


def apt_proxy_conf(proxy_url: str) -> str:
    """apt does not read /etc/environment when run by root outside a login session."""
    return f'Acquire::http::Proxy "{proxy_url}";\nAcquire::https::Proxy "{proxy_url}";\n'


KEEP_PROXY_SUDOERS = (
    'Defaults env_keep += "http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY '
    'SSL_CERT_FILE REQUESTS_CA_BUNDLE"\n'
)


def sudoers_nopasswd(user: str) -> str:
    return f"{user} ALL=(ALL:ALL) NOPASSWD:ALL\n"


def _write(root: Path, rel: str, content: str, mode: int = 0o644, uid: int = 0, gid: int = 0) -> None:
    """Write a file inside the VPS root without following a symlink out of it."""
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(content)
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def _install_ssh_dir(root: Path, home: str, pubkey: str, uid: int, gid: int) -> None:
    """~/.ssh/authorized_keys with the sandbox key, owned by the user, modes sshd accepts."""
    ssh_dir = root / home.lstrip("/") / ".ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chown(ssh_dir, uid, gid)
    ssh_dir.chmod(0o700)
    _write(root, f"{home}/.ssh/authorized_keys", pubkey.strip() + "\n", 0o600, uid, gid)


def _passwd_entry(root: Path, user: str) -> tuple[int, int, str]:
    """uid, gid and home of a user, read from the VPS's own /etc/passwd."""
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if len(fields) >= 6 and fields[0] == user:
            return int(fields[2]), int(fields[3]), fields[5]
    raise SandboxError(f"user {user} not found in {root}/etc/passwd")


def _chroot(root: Path, *args: str) -> None:
    run(["chroot", str(root), *args])


def _set_root_password(root: Path, password: str) -> None:
    """Root's password through chpasswd's stdin (never argv), and an sshd that accepts it."""
    if not password or any(c in password for c in ":\n"):
        raise SandboxError("the root password must be non-empty, without ':' or a newline")
    run(["chroot", str(root), "chpasswd"], input_text=f"root:{password}\n")
    _write(root, "/etc/ssh/sshd_config.d/50-sandbox-root-password.conf", ROOT_PASSWORD_SSHD)


def _host_ca_files() -> list[Path]:
    return sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))


def _generate_host_keys(root: Path) -> list[str]:
    """Fresh SSH host keys for this VPS (the base has none), as "type base64" strings."""
    run(["ssh-keygen", "-A", "-f", str(root)])
    keys = []
    for pub in sorted((root / "etc/ssh").glob("ssh_host_*_key.pub")):
        parts = pub.read_text().split()
        keys.append(f"{parts[0]} {parts[1]}")
    if not keys:
        raise SandboxError(f"ssh-keygen -A produced no host keys under {root}/etc/ssh")
    return keys


#: sshd settings of a host booted with a root password: what a provider's fresh VPS allows
ROOT_PASSWORD_SSHD = "PermitRootLogin yes\nPasswordAuthentication yes\n"


def customise(root: Path, *, hostname: str, proxy_url: str, pubkey: str, sudo_user: str,
              root_password: str | None = None) -> list[str]:
    """Turn the pristine base into one specific VPS. Returns its SSH host public keys.

    With `root_password` the host looks like a provider's fresh VPS: root logs in with that
    password only (no key), and there is no other user. All writes land in the host's own
    upper layer (or copy): the shared base stays pristine.
    """
    _write(root, "/etc/hostname", hostname + "\n")
    _write(root, "/etc/hosts", hosts_file(hostname))
    _write(root, "/etc/machine-id", os.urandom(16).hex() + "\n", 0o444)
    _write(root, "/etc/environment", environment_file(proxy_url))
    _write(root, "/etc/apt/apt.conf.d/01proxy", apt_proxy_conf(proxy_url))
    _write(root, "/etc/sudoers.d/keep-proxy", KEEP_PROXY_SUDOERS, 0o440)
    ca_files = _host_ca_files()
    for ca in ca_files:
        _write(root, f"/usr/local/share/ca-certificates/{ca.name}", ca.read_text())
    if ca_files:
        _chroot(root, "update-ca-certificates")
    for old in (root / "etc/ssh").glob("ssh_host_*"):
        old.unlink()
    host_keys = _generate_host_keys(root)
    if root_password is not None:
        _set_root_password(root, root_password)
        return host_keys
    _install_ssh_dir(root, "/root", pubkey, 0, 0)
    _chroot(root, "useradd", "--create-home", "--shell", "/bin/bash", sudo_user)
    uid, gid, home = _passwd_entry(root, sudo_user)
    _install_ssh_dir(root, home, pubkey, uid, gid)
    _write(root, f"/etc/sudoers.d/{sudo_user}", sudoers_nopasswd(sudo_user), 0o440)
    return host_keys
