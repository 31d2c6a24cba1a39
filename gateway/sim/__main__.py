"""`python -m gateway.sim --wire openai --port 9001`: one simulated provider, until interrupted.

`--gpu vllm --max-batch 8 --speed 0.5`: an OpenAI-wire GPU model server with real capacity limits."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from gateway.sim.behaviour import SimConfig
from gateway.sim.gpu import SERVERS, GpuConfig
from gateway.sim.server import serve_forever


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m gateway.sim", description=__doc__)
    p.add_argument("--wire", choices=["openai", "anthropic"], default="openai")
    p.add_argument("--port", type=int, default=9001)
    p.add_argument("--name", default="sim")
    p.add_argument("--api-key", default=None)
    p.add_argument("--client-credentials", action="store_true",
                   help="take each caller's own credential instead of --api-key (a credentials: client provider): "
                        "any bearer or x-api-key, an OAuth bearer only with anthropic-beta: oauth-2025-04-20")
    p.add_argument("--reply-tokens", type=int, default=20)
    p.add_argument("--first-token-delay-s", type=float, default=0.0)
    p.add_argument("--chunk-delay-s", type=float, default=0.0)
    p.add_argument("--dumb", action="store_true", help="fluent but wrong answers (POST /_sim/fault {\"dumb\": false} to fix)")
    p.add_argument("--broken", choices=["wrong_script", "empty", "loop", "bad_tool_args"], default=None,
                   help="answers broken this way, from --broken-after-s after start for --broken-for-s "
                        "(default: from the start, for good): a brownout on a schedule")
    p.add_argument("--broken-after-s", type=float, default=0.0)
    p.add_argument("--broken-for-s", type=float, default=None)
    p.add_argument("--agent", action="store_true",
                   help="agent mode: call a shell tool for a 'run: <command>' line, a Read tool for 'read: <path>'")
    gpu = p.add_argument_group("GPU server", "a batch, a queue and a prefix cache with a server's /metrics "
                                             "(see gateway/sim/gpu.py)")
    gpu.add_argument("--gpu", choices=SERVERS, default=None, metavar="SERVER",
                     help="play this GPU model server: " + ", ".join(SERVERS))
    defaults = GpuConfig()
    gpu.add_argument("--max-batch", type=int, default=defaults.max_batch)
    gpu.add_argument("--max-waiting", type=int, default=None, help="beyond it, 503 (TGI: 429); default: no bound")
    gpu.add_argument("--prefill-ms-per-ktok", type=float, default=defaults.prefill_ms_per_ktok)
    gpu.add_argument("--decode-ms-per-token", type=float, default=defaults.decode_ms_per_token)
    gpu.add_argument("--slowdown", type=float, default=defaults.slowdown)
    gpu.add_argument("--kv-tokens", type=int, default=defaults.kv_tokens)
    gpu.add_argument("--prefix-cache-entries", type=int, default=defaults.prefix_cache_entries)
    gpu.add_argument("--chunk-tokens", type=int, default=defaults.chunk_tokens)
    p.add_argument("--speed", type=float, default=1.0, help="every delay divided by this (0.5: half as fast)")
    args = p.parse_args()
    gpu_config = None if args.gpu is None else GpuConfig(
        max_batch=args.max_batch, max_waiting=args.max_waiting, server=args.gpu,
        prefill_ms_per_ktok=args.prefill_ms_per_ktok, decode_ms_per_token=args.decode_ms_per_token,
        slowdown=args.slowdown, kv_tokens=args.kv_tokens, prefix_cache_entries=args.prefix_cache_entries,
        chunk_tokens=args.chunk_tokens)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    config = SimConfig(name=args.name, wire=args.wire, api_key=args.api_key, reply_tokens=args.reply_tokens,
                       first_token_delay_s=args.first_token_delay_s, chunk_delay_s=args.chunk_delay_s,
                       dumb=args.dumb, agent=args.agent, gpu=gpu_config, speed=args.speed, broken=args.broken,
                       broken_after_s=args.broken_after_s, broken_for_s=args.broken_for_s,
                       client_credentials=args.client_credentials)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(config, args.port))


main()
