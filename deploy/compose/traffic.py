"""Steady demo traffic for the compose stack: chats, streams and embeddings spread over both
gateway replicas, so the dashboards have something to show. Standard library only."""

from __future__ import annotations

import json
import os
import random
import time
import urllib.error
import urllib.request

GATEWAYS = os.environ.get("GATEWAYS", "http://gateway-1:8080,http://gateway-2:8080").split(",")
KEY = os.environ.get("RECLOSER_KEY", "sk-recloser-demo-app")
RATE = float(os.environ.get("RATE", "5"))          # requests per second


def send(base: str, path: str, body: dict[str, object]) -> int:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()
            return int(answer.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except OSError:
        return 0


def main() -> None:
    rng = random.Random(7)
    while True:
        base = rng.choice(GATEWAYS)
        kind = rng.random()
        if kind < 0.6:
            send(base, "/v1/chat/completions", {"model": "chat", "messages": [{"role": "user", "content": "hello"}]})
        elif kind < 0.9:
            send(base, "/v1/chat/completions", {"model": "chat", "stream": True,
                                                "messages": [{"role": "user", "content": "tell me more"}]})
        else:
            send(base, "/v1/embeddings", {"model": "embed", "input": "a sentence"})
        time.sleep(1 / RATE)


if __name__ == "__main__":
    main()
