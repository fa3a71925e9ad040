"""A real mosquitto process on a free loopback port, for tests and benchmarks that configure, restart or
load a broker of their own (the machine's broker on 1883 serves the plain cases)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

WAIT_S = 10.0


def find_binary(name: str, fallback: str) -> str:
    path = shutil.which(name) or fallback
    assert Path(path).is_file(), f"{name} is not installed (Debian package 'mosquitto'); these tests need it"
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """mosquitto with `config` (listener lines are added) in `directory`; `restart` keeps its port and its
    persistence file, as a broker restart in a plant does."""

    def __init__(self, directory: Path, config: str = "allow_anonymous true\n", port: int | None = None):
        self.directory = directory
        self.port = port or free_port()
        self.log = directory / "mosquitto.log"
        self.conf = directory / "mosquitto.conf"
        directory.mkdir(parents=True, exist_ok=True)
        # As root, mosquitto would switch to the 'mosquitto' user, which cannot read the files here.
        user = pwd.getpwuid(os.geteuid()).pw_name
        listener = "" if f"listener {self.port}" in config else f"listener {self.port} 127.0.0.1\n"
        self.conf.write_text(f"{listener}{config}user {user}\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Mosquitto:
        binary = find_binary("mosquitto", "/usr/sbin/mosquitto")
        with self.log.open("ab") as log_file:
            self.process = subprocess.Popen(
                [binary, "-c", str(self.conf), "-v"], stdout=log_file, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + WAIT_S
        while True:
            assert self.process.poll() is None, f"mosquitto exited:\n{self.log_text()}"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                assert time.monotonic() < deadline, f"mosquitto did not listen:\n{self.log_text()}"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=WAIT_S)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
