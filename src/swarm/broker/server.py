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
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import quote

from swarm.wire import MAX_MESSAGE_BYTES

__all__ = [
    "ACL_RULES",
    "ROLES",
    "MosquittoNotFound",
    "MosquittoServer",
    "PortInUse",
    "acl_text",
    "find_mosquitto",
    "free_port",
]

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


# Every authenticated client may read the whole swarm tree (observability is the point),
# and may publish on agent inboxes and shard bundles only under its own client id, the last
# topic level there (%c is mosquitto's client-id substitution): a client cannot speak for
# another agent, the broker refuses the publish. `pattern` lines apply to every user.
ACL_RULES = """\
pattern read swarm/#
pattern write swarm/+/agent/+/inbox/%c
pattern write swarm/+/shard/+/bundle/%c
"""

ROLES = ("fleet", "operator", "agent")

# The shard protocol's own control messages, sent by the coordinator. They are
# swarm.fleet.control.SHARD_PROTOCOL, which this layer cannot import (a test keeps the two
# equal).
COORDINATOR_CONTROLS = ("scenario", "start", "stop")

# What each role may publish beyond ACL_RULES. The operator's live controls are given by
# the caller (`live_controls`): their registry lives above this layer.
_AGENT_TOPICS = (
    "swarm/+/region/+",
    "swarm/+/events/#",
    "swarm/+/shard/+/metrics",
    "swarm/+/shard/+/result",
    "swarm/+/shard/+/status",
)
_FLEET_TOPICS = (
    "swarm/+/metrics",
    "swarm/+/status",
    *(f"swarm/+/control/{name}" for name in COORDINATOR_CONTROLS),
    *_AGENT_TOPICS,
)


def acl_text(roles: Mapping[str, str], live_controls: Sequence[str] = ()) -> str:
    """The ACL file: the shared patterns, then one `user` block per user (user -> role).

    A fleet user (`swarm run --broker`, the workers it starts) writes everything a run
    needs; an agent user (`swarm worker` elsewhere) only its agents' traffic and its shard's
    reports, so it cannot forge a run's metrics or steer it; an operator user (dashboard,
    `swarm control`) only the live controls, so a leaked dashboard login cannot fake data.
    """
    for name in live_controls:
        if not name or any(c in name for c in "/+#\n\r\0 "):
            raise ValueError(f"live control {name!r} is not one topic level")
    blocks = [ACL_RULES]
    for user, role in roles.items():
        if role == "fleet":
            allowed: Sequence[str] = _FLEET_TOPICS
        elif role == "agent":
            allowed = _AGENT_TOPICS
        elif role == "operator":
            if not live_controls:
                raise ValueError(
                    f"operator {user!r} may only publish live controls, and none were given: "
                    "pass live_controls (swarm.fleet.control.COMMANDS)"
                )
            allowed = [f"swarm/+/control/{name}" for name in live_controls]
        else:
            raise ValueError(f"user {user!r}: unknown role {role!r}; known: {', '.join(ROLES)}")
        blocks.append(f"\n# {role}\nuser {user}\n" + "".join(f"topic write {t}\n" for t in allowed))
    return "".join(blocks)


def _check_users(users: Mapping[str, str]) -> None:
    """Names the password and ACL files can hold (mosquitto trims blanks around a name)."""
    for user, password in users.items():
        if not user or user != user.strip() or ":" in user or any(c in user for c in "\n\r\0"):
            raise ValueError(
                f"user name {user!r} is invalid: no ':', line breaks or outer spaces, not empty"
            )
        if any(c in password for c in "\n\r\0"):
            raise ValueError(f"the password of {user!r} has a line break or NUL")


def _write_auth_files(directory: Path, users: dict[str, str], acl: str, mosquitto: str) -> None:
    """The password file (hashed by mosquitto_passwd, which ships with mosquitto) and ACL."""
    tool = shutil.which("mosquitto_passwd") or str(Path(mosquitto).with_name("mosquitto_passwd"))
    if not Path(tool).exists():
        raise MosquittoNotFound(
            "mosquitto_passwd is missing; it comes with mosquitto. " + INSTALL_HINT
        )
    passwd = directory / "passwd"
    passwd.touch(mode=0o600)
    for user, password in users.items():
        done = subprocess.run(
            [tool, "-b", str(passwd), user, password], capture_output=True, text=True, timeout=30
        )
        if done.returncode != 0:
            raise RuntimeError(f"mosquitto_passwd failed: {done.stderr.strip() or done.stdout}")
    (directory / "acl").write_text(acl)
    if os.geteuid() == 0:
        # Started as root, mosquitto drops to its own user before reading these files.
        with contextlib.suppress(KeyError):
            account = pwd.getpwnam("mosquitto")
            for path in (directory, passwd, directory / "acl"):
                os.chown(path, account.pw_uid, account.pw_gid)


class PortInUse(RuntimeError):
    """Another program already accepts connections on the port mosquitto was to listen on."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(f"port {port} on {host} is in use by another program")
        self.host = host
        self.port = port


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
    # username -> role (one of ROLES); a user not named here is a fleet user
    roles: dict[str, str] = field(default_factory=dict)
    # the live control names an operator may publish (swarm.fleet.control.COMMANDS)
    live_controls: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    _dir: tempfile.TemporaryDirectory[str] | None = None
    # mosquitto's last lines on stderr, read by a thread so a chatty broker never blocks on
    # a full pipe, and kept to say why it stopped
    _stderr: deque[str] = field(default_factory=lambda: deque(maxlen=40))
    _reader: threading.Thread | None = None

    def role_of(self, user: str) -> str:
        return self.roles.get(user, "fleet")

    @property
    def url(self) -> str:
        """The URL to pass to --broker; with authentication, a fleet user's credentials."""
        if not self.users:
            return f"mqtt://{self.host}:{self.port}"
        if any(self.role_of(user) == "fleet" for user in self.users):
            return self.url_for("fleet")
        return self._url_with(next(iter(self.users)))

    def url_for(self, role: str) -> str:
        """The URL carrying the credentials of the first user with `role`."""
        if not self.users:
            return self.url
        for user in self.users:
            if self.role_of(user) == role:
                return self._url_with(user)
        raise ValueError(f"no user has the role {role!r}; roles: {self.roles or 'all fleet'}")

    def _url_with(self, user: str) -> str:
        password = quote(self.users[user], safe="")
        return f"mqtt://{quote(user, safe='')}:{password}@{self.host}:{self.port}"

    def acl_text(self) -> str:
        """The ACL mosquitto enforces with authentication (see `acl_text`)."""
        _check_users(self.users)
        unknown = sorted(set(self.roles) - set(self.users))
        if unknown:
            raise ValueError(f"roles name {unknown[0]!r}, which is not among the users")
        return acl_text({user: self.role_of(user) for user in self.users}, self.live_controls)

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
        """Start mosquitto and wait until it listens.

        Raises PortInUse when another program holds the port: it would otherwise answer
        our readiness probe while mosquitto dies of the bind error.
        """
        executable = find_mosquitto()
        acl = self.acl_text() if self.users else ""  # bad users or roles fail before any I/O
        if self.port == 0:
            self.port = free_port(self.host)
        elif _port_open(self.host, self.port):
            raise PortInUse(self.host, self.port)
        self._dir = tempfile.TemporaryDirectory(prefix="swarm-mosquitto-")
        directory = Path(self._dir.name)
        try:
            if self.users:
                _write_auth_files(directory, self.users, acl, executable)
            config = directory / "mosquitto.conf"
            config.write_text(self.config_text(str(directory)))
        except BaseException:
            self.stop()
            raise
        self.process = subprocess.Popen(
            [executable, "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
        )
        self._stderr = deque(maxlen=40)
        self._reader = threading.Thread(
            target=_read_lines, args=(self.process.stderr, self._stderr), daemon=True
        )
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not _port_open(self.host, self.port):
            why = self.failure()
            if why is not None:
                in_use = "Address already in use" in why
                self.stop()
                if in_use:  # taken between our check and mosquitto's bind
                    raise PortInUse(self.host, self.port)
                raise RuntimeError(f"mosquitto exited at start: {why}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"mosquitto did not listen on {self.host}:{self.port} in {timeout}s"
                )
            time.sleep(0.02)
        return self

    def failure(self) -> str | None:
        """None while mosquitto runs; once it has exited, why: its status and its stderr."""
        process = self.process
        if process is None:
            return "mosquitto is not running"
        status = process.poll()
        if status is None:
            return None
        if self._reader is not None:
            self._reader.join(1.0)  # the rest of its output: the pipe is at its end
        said = "; ".join(line for line in self._stderr if line) or "no output"
        how = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
        return f"{said} ({how})"

    def stop(self, timeout: float = 5.0) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.join(1.0)
        if process is not None and process.stderr is not None:
            process.stderr.close()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> MosquittoServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_lines(stream: IO[bytes] | None, into: deque[str]) -> None:
    if stream is None:
        return
    with contextlib.suppress(ValueError, OSError):  # closed under us by stop()
        for line in stream:
            into.append(line.decode(errors="replace").strip())
