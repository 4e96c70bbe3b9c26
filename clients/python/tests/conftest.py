"""A live `reshard serve` (four embedded SQLite shards, loopback, a port the system picks) per test."""

import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from reshard_client import ReshardClient

TOKEN = "python-client-token"


class Server:
    def __init__(self, binary: str):
        self.root = tempfile.mkdtemp(prefix="reshard-python-")
        self.log_path = os.path.join(self.root, "serve.log")
        self.log = open(self.log_path, "w")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("RESHARD_")}
        self.process = subprocess.Popen(
            [binary, "serve", "--data", os.path.join(self.root, "data"), "--shards", "4", "--host", "127.0.0.1",
             "--port", "0", "--admin-token", TOKEN, "--log-level", "info"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log, env=environment,
        )
        try:
            self.url = self._wait_for_address()
        except BaseException:
            # A server that never said where it listens is stopped here: no fixture will.
            self.stop()
            raise

    def _wait_for_address(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"reshard serve exited {self.process.returncode}:\n{self.tail()}")
            with open(self.log_path) as log:
                for line in log:
                    match = re.search(r"address=(http://127\.0\.0\.1:\d+)", line)
                    if match and "reshard is serving" in line:
                        return match.group(1)
            time.sleep(0.05)
        raise RuntimeError(f"reshard serve did not start:\n{self.tail()}")

    def tail(self) -> str:
        with open(self.log_path) as log:
            return "".join(log.readlines()[-15:])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def server():
    binary = os.environ.get("RESHARD_BIN", os.path.join(os.path.dirname(__file__), "../../../.build/debug/reshard"))
    if not os.access(binary, os.X_OK):
        pytest.fail(f"no reshard binary at {binary}: swift build, or set RESHARD_BIN")
    live = Server(os.path.abspath(binary))
    yield live
    live.stop()


@pytest.fixture
def client(server):
    with ReshardClient(server.url, admin_token=TOKEN) as reshard:
        yield reshard
