"""Continuing a stream that broke after bytes reached the client, on the next deployment, stitched into
one: chat completions and Messages by prefill (`chat.py`, `messages.py`), Responses by restarting
(`responses.py`). Pure; the relay drives them."""
