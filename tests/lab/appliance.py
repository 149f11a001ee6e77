"""The real HarvestWatch daemon inside the lab's `lan` namespace: its config, start, stop, store.

Used by the lab's integration tests and by `make demo`. The daemon runs exactly as on a Pi
(`harvestwatch run --config ...`): real firewall, real NFLOG capture, real store, real probes,
with the probe schedule compressed so that a run takes a minute, not a day.
"""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from appliance.report.status import write_status
from appliance.settings import store_path
from appliance.store.db import Store

SERVICE_PORTS = (22, 8080)


def write_config(lab, path: Path, *, state_dir: Path, nflog_group: int = 7, router: str = "upnp",
                 family_prefix: int = 64, lease: int = 600, notify: tuple[str, ...] = (), **probe) -> Path:
    """The daemon's configuration for the lab: its interface and pools, a probe schedule compressed
    from days to seconds, the clock from the lab's chronyd in the appliance's namespace."""
    settings = {"server_interval": 3600, "min_gap": 2, "round_every": 4, "first_delay": 1, "observation": 3600,
                "resolve_every": 60, "reply_timeout": 1.5, **probe}
    lines = [
        "[appliance]", f'interface = "{lab.lan_dev}"', f'state_dir = "{state_dir}"',
        "[firewall]", f"nflog_group = {nflog_group}", f"tcp_services = {list(SERVICE_PORTS)}",
        "[detect]", f"family_prefix = {family_prefix}",
        "[store]", "flush_every = 2",
        "[clock]", 'source = "chrony"',
        "[reachability]", f'router = "{router}"', f"lease = {lease}",
        "[notify]", f"urls = {_toml_list(notify)}",
        "[probe]", f"pools = {_toml_list(lab.pools)}", f"nameservers = {_toml_list([lab.nameserver])}",
        *(f"{key} = {value}" for key, value in settings.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml_list(items) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


class ApplianceDaemon:
    """`harvestwatch run` in the lan namespace, its output in `log_path`."""

    def __init__(self, lab, config_path: Path, state_dir: Path, log_path: Path):
        self.lab, self.config_path, self.state_dir, self.log_path = lab, config_path, state_dir, log_path
        self.process: subprocess.Popen | None = None

    @property
    def db_path(self) -> str:
        return store_path(str(self.state_dir))

    def start(self) -> "ApplianceDaemon":
        if self.lab.appliance_chrony is None:  # the Pi's own chronyd: the daemon waits for it
            self.lab.start_appliance_clock(synchronised=True)
        log = open(self.log_path, "a")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = self.lab.ns.popen(self.lab.lan_ns, [sys.executable, "-m", "appliance", "run", "--config",
                                                           str(self.config_path)], stdout=log, stderr=log, env=env)
        log.close()
        return self

    def kill(self) -> None:
        """SIGKILL: no chance to flush or say goodbye, as on a power cut."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 20) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def store(self) -> Store:
        return Store(self.db_path, readonly=True)

    def status_text(self) -> str:
        """What `harvestwatch status` prints for this daemon's store."""
        out = io.StringIO()
        store = self.store()
        try:
            write_status(out, store)
        finally:
            store.close()
        return out.getvalue()

    def wait_for(self, what, timeout: float, step: float = 0.5):
        """Poll `what(store)` until it returns something true; the daemon must stay up meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise AssertionError(f"the daemon exited ({self.process.returncode}):\n{self.log_tail()}")
            if os.path.exists(self.db_path):
                store = self.store()
                try:
                    value = what(store)
                except Exception:  # the schema may not be there in the first instant
                    value = None
                finally:
                    store.close()
                if value:
                    return value
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout} s; daemon log:\n{self.log_tail()}")
            time.sleep(step)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
