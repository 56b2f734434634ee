"""Start a local Mosquitto with a configuration generated for fleets.

Used by `swarm broker` and by the tests. The broker listens on loopback only, on a port
chosen by the OS unless given, with limits sized for thousands of clients: a fleet on a
real broker relies on its maximum packet size and queue limits.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from swarm.wire import MAX_MESSAGE_BYTES

__all__ = ["ACL_RULES", "MosquittoNotFound", "MosquittoServer", "find_mosquitto", "free_port"]

INSTALL_HINT = (
    "mosquitto is not installed (or not on PATH): on Debian/Ubuntu run "
    "`sudo apt-get install mosquitto`, on macOS `brew install mosquitto`, or point "
    "--broker at a broker you already run"
)


class MosquittoNotFound(RuntimeError):
    """No mosquitto executable; the message says how to install one."""


# Debian installs the broker in sbin, which is often not on a user's PATH.
FALLBACK_PATHS: tuple[str, ...] = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def find_mosquitto() -> str:
    for candidate in (shutil.which("mosquitto"), *FALLBACK_PATHS):
        if candidate and Path(candidate).is_file():
            return candidate
    raise MosquittoNotFound(INSTALL_HINT)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


# Any authenticated client may read the whole swarm tree (observability is the point) and
# publish run-level topics, but on agent inboxes and shard bundles only under its own client
# id, which is the last topic level there (%c is mosquitto's client-id substitution). A
# client therefore cannot speak for another agent: the broker refuses the publish.
ACL_RULES = """\
pattern read swarm/#
pattern write swarm/+/agent/+/inbox/%c
pattern write swarm/+/shard/+/bundle/%c
pattern write swarm/+/region/+
pattern write swarm/+/metrics
pattern write swarm/+/events/#
pattern write swarm/+/control/#
pattern write swarm/+/shard/+/metrics
pattern write swarm/+/shard/+/result
pattern write swarm/+/shard/+/status
"""


def _write_auth_files(directory: Path, users: dict[str, str], mosquitto: str) -> None:
    """The password file (hashed by mosquitto_passwd, which ships with mosquitto) and ACL."""
    tool = shutil.which("mosquitto_passwd") or str(Path(mosquitto).with_name("mosquitto_passwd"))
    if not Path(tool).exists():
        raise MosquittoNotFound(
            "mosquitto_passwd is missing; it comes with mosquitto. " + INSTALL_HINT
        )
    passwd = directory / "passwd"
    passwd.touch(mode=0o600)
    for user, password in users.items():
        if not user or ":" in user or any(c in user + password for c in "\n\r\0"):
            raise ValueError(f"user name {user!r} is invalid: no ':' or line breaks, not empty")
        done = subprocess.run(
            [tool, "-b", str(passwd), user, password], capture_output=True, text=True, timeout=30
        )
        if done.returncode != 0:
            raise RuntimeError(f"mosquitto_passwd failed: {done.stderr.strip() or done.stdout}")
    (directory / "acl").write_text(ACL_RULES)
    if os.geteuid() == 0:
        # Started as root, mosquitto drops to its own user before reading these files.
        with contextlib.suppress(KeyError):
            account = pwd.getpwnam("mosquitto")
            for path in (directory, passwd, directory / "acl"):
                os.chown(path, account.pw_uid, account.pw_gid)


@dataclass
class MosquittoServer:
    """One mosquitto process on loopback; a context manager that always cleans up."""

    port: int = 0  # 0: pick a free one
    host: str = "127.0.0.1"
    max_queued_messages: int = 100_000
    max_packet_bytes: int = MAX_MESSAGE_BYTES + 4096  # the envelope limit plus MQTT headers
    extra_config: list[str] = field(default_factory=list)
    # username -> password; when given, anonymous clients are refused and the ACL applies
    users: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    _dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """The URL to pass to --broker; with authentication, the first user's credentials."""
        if not self.users:
            return f"mqtt://{self.host}:{self.port}"
        user, password = next(iter(self.users.items()))
        return f"mqtt://{quote(user, safe='')}:{quote(password, safe='')}@{self.host}:{self.port}"

    def config_text(self, directory: str = "<dir>") -> str:
        """mosquitto.conf; `directory` holds the password and ACL files (auth only)."""
        auth = (
            [
                "allow_anonymous false",
                f"password_file {directory}/passwd",
                f"acl_file {directory}/acl",
            ]
            if self.users
            else ["allow_anonymous true"]
        )
        return "\n".join(
            [
                f"listener {self.port} {self.host}",
                *auth,
                "persistence false",
                f"max_queued_messages {self.max_queued_messages}",
                f"max_packet_size {self.max_packet_bytes}",
                "max_inflight_messages 0",
                "set_tcp_nodelay true",
                "log_dest stderr",
                "log_type error",
                "log_type warning",
                *self.extra_config,
                "",
            ]
        )

    def start(self, timeout: float = 10.0) -> MosquittoServer:
        executable = find_mosquitto()
        if self.port == 0:
            self.port = free_port(self.host)
        self._dir = tempfile.TemporaryDirectory(prefix="swarm-mosquitto-")
        directory = Path(self._dir.name)
        if self.users:
            try:
                _write_auth_files(directory, self.users, executable)
            except RuntimeError:
                self.stop()
                raise
        config = directory / "mosquitto.conf"
        config.write_text(self.config_text(str(directory)))
        self.process = subprocess.Popen(
            [executable, "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
        )
        deadline = time.monotonic() + timeout
        while not _port_open(self.host, self.port):
            if self.process.poll() is not None:
                err = (
                    self.process.stderr.read().decode(errors="replace")
                    if self.process.stderr
                    else ""
                )
                self.stop()
                raise RuntimeError(f"mosquitto exited at start: {err.strip() or 'no output'}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"mosquitto did not listen on {self.host}:{self.port} in {timeout}s"
                )
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if process is not None and process.stderr is not None:
            process.stderr.close()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> MosquittoServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
