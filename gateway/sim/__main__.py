"""`python -m gateway.sim --wire openai --port 9001`: one simulated provider, until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from gateway.sim.behaviour import SimConfig
from gateway.sim.server import serve_forever


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m gateway.sim", description=__doc__)
    p.add_argument("--wire", choices=["openai", "anthropic"], default="openai")
    p.add_argument("--port", type=int, default=9001)
    p.add_argument("--name", default="sim")
    p.add_argument("--api-key", default=None)
    p.add_argument("--reply-tokens", type=int, default=20)
    p.add_argument("--first-token-delay-s", type=float, default=0.0)
    p.add_argument("--chunk-delay-s", type=float, default=0.0)
    p.add_argument("--dumb", action="store_true", help="fluent but wrong answers (POST /_sim/fault {\"dumb\": false} to fix)")
    p.add_argument("--agent", action="store_true",
                   help="agent mode: call a shell tool for a 'run: <command>' line, a Read tool for 'read: <path>'")
    args = p.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    config = SimConfig(name=args.name, wire=args.wire, api_key=args.api_key, reply_tokens=args.reply_tokens,
                       first_token_delay_s=args.first_token_delay_s, chunk_delay_s=args.chunk_delay_s,
                       dumb=args.dumb, agent=args.agent)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(config, args.port))


main()
