"""The simulated upstreams (`kind: sim`) a gateway runs: started once per provider name, kept for
the life of the process, so a reloaded policy that still names a sim reaches the same server."""

from __future__ import annotations

import secrets
from typing import Any

from gateway.policy.schema import PolicyDocument
from gateway.routing.table import Upstream

# The api-version a simulated Azure upstream is called with when the policy names none.
AZURE_SIM_API_VERSION = "2024-10-21"


class SimPool:
    def __init__(self) -> None:
        self.servers: dict[str, Any] = {}        # provider name → running SimServer
        self.upstreams: dict[str, Upstream] = {}

    async def ensure(self, doc: PolicyDocument) -> dict[str, Upstream]:
        """Starts the sims `doc` names that are not running yet; returns the address of each of its sims.

        A sim already running keeps the settings it started with (its port and key are in use).
        """
        wanted = [name for name, p in doc.providers.items() if p.kind == "sim"]
        missing = [name for name in wanted if name not in self.servers]
        if missing:
            from gateway.sim import SimConfig, SimServer  # only policies with sims pay for the import
            from gateway.sim.gpu import GpuConfig

            for name in missing:
                provider = doc.providers[name]
                s = provider.sim
                client = provider.credentials == "client"   # then it checks each caller's own instead
                key = provider.api_key.get_secret_value() if provider.api_key else \
                    (None if client else f"sk-sim-{secrets.token_hex(8)}")
                config = SimConfig(name=name, wire=s.wire if s else "openai", api_key=key,
                                   reply_tokens=s.reply_tokens if s else 20,
                                   embedding_dim=s.embedding_dim if s else 8,
                                   first_token_delay_s=s.first_token_delay_s if s else 0.0,
                                   chunk_delay_s=s.chunk_delay_s if s else 0.0,
                                   reply_word=s.reply_word if s else None, prefill=s.prefill if s else True,
                                   dumb=s.dumb if s else False, agent=s.agent if s else False,
                                   gpu=GpuConfig(**s.gpu.model_dump()) if s and s.gpu else None,
                                   speed=s.speed if s else 1.0, client_credentials=client,
                                   broken=s.broken.answers if s and s.broken else None,
                                   broken_after_s=s.broken.after_s if s and s.broken else 0.0,
                                   broken_for_s=s.broken.for_s if s and s.broken else None)
                # A pool of sims (`endpoints: N`): N servers with the same settings, each on a port of its own
                # (a fixed `port` is the first one's, the others take the ports after it); the first is
                # `servers[name]`, the others `servers["name@2"]` …
                replicas = provider.endpoints if isinstance(provider.endpoints, int) else 0
                servers = []
                for i in range(max(1, replicas)):
                    server = SimServer(config, port=s.port + i if s and s.port else 0)
                    await server.start()
                    servers.append(server)
                    self.servers[name if i == 0 else f"{name}@{i + 1}"] = server
                version = provider.api_version or (AZURE_SIM_API_VERSION if config.wire == "azure" else None)
                self.upstreams[name] = Upstream(kind=config.wire, base_url=servers[0].base_url, api_key=key,
                                                api_version=version, beta=tuple(provider.anthropic_beta),
                                                endpoints=tuple(x.base_url for x in servers) if replicas else ())
        return {name: self.upstreams[name] for name in wanted}

    async def stop(self) -> None:
        for server in self.servers.values():
            await server.stop()
        self.servers.clear()
        self.upstreams.clear()
