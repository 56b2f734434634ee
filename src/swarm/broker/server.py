"""Start a local Mosquitto with a configuration generated for fleets.

Used by `swarm broker` and by the tests. The broker listens on loopback only, on a port
chosen by the OS unless given, with limits sized for thousands of clients: a fleet on a
real broker relies on its maximum packet size and queue limits.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from swarm.wire import MAX_MESSAGE_BYTES

__all__ = ["MosquittoNotFound", "MosquittoServer", "find_mosquitto", "free_port"]

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


@dataclass
class MosquittoServer:
    """One mosquitto process on loopback; a context manager that always cleans up."""

    port: int = 0  # 0: pick a free one
    host: str = "127.0.0.1"
    max_queued_messages: int = 100_000
    max_packet_bytes: int = MAX_MESSAGE_BYTES + 4096  # the envelope limit plus MQTT headers
    extra_config: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    _dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def config_text(self) -> str:
        return "\n".join(
            [
                f"listener {self.port} {self.host}",
                "allow_anonymous true",
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
        config = Path(self._dir.name) / "mosquitto.conf"
        config.write_text(self.config_text())
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
