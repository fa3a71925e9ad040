"""A `leitstand serve` process on loopback with the simulated enterprise's model and a logged-in user."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from leitstand.sim.enterprise import enterprise_model

ROOT = Path(__file__).resolve().parent.parent
CLI = str(ROOT / ".venv" / "bin" / "leitstand")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """Starts the server in its own process (as in production) and tears it down afterwards."""

    def __init__(self, plants: int, env: dict[str, str] | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.data_dir = Path(self._tmp.name)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.plants = plants
        self.token = ""
        self.machine_ids: list[str] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._env = env or {}

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    def __enter__(self) -> ServerProcess:
        password = secrets.token_urlsafe(16)
        env = {
            **os.environ,
            "LEITSTAND_NEW_PASSWORD": password,
            "LEITSTAND_LOG_LEVEL": "WARNING",
            **self._env,
        }
        subprocess.run(
            [
                CLI,
                "create-user",
                "bench",
                "--tenant",
                "nordwerk",
                "--role",
                "tenant_admin",
                "--data-dir",
                str(self.data_dir),
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        self._process = subprocess.Popen(
            [CLI, "serve", "--data-dir", str(self.data_dir), "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise RuntimeError("server did not become ready")
            time.sleep(0.2)
        login = httpx.post(f"{self.url}/api/v1/auth/login", json={"username": "bench", "password": password})
        self.token = login.raise_for_status().json()["token"]
        doc = enterprise_model(plants=self.plants)
        httpx.post(
            f"{self.url}/api/v1/assets",
            json=doc,
            headers=self.auth,
            timeout=120,
        ).raise_for_status()
        assets = httpx.get(f"{self.url}/api/v1/assets?level=machine", headers=self.auth, timeout=30).json()
        self.machine_ids = [a["id"] for a in assets["assets"]]
        return self

    def rss_mib(self) -> float:
        assert self._process is not None
        for line in Path(f"/proc/{self._process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
        return 0.0

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._tmp.cleanup()
