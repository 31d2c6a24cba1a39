"""Upstream clients: the OpenAI wire (the pass-through fast path), Anthropic natively, litellm for the
long tail, and the crossing between a client's API and a deployment's wire.

It imports the wires and the ground floor; routing, the flow and above import it."""
