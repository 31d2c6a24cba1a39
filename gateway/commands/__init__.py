"""The `recloser` subcommands beyond `serve`: demo, drill, check advice, simulate, canary, import-litellm.

The top floor: a command may import anything below it (serving, flow, metering, policy, sim …);
nothing imports a command but `gateway/cli.py`."""
