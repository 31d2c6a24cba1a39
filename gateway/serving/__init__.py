"""The serving shell: the aiohttp application, the listener, workers, hot reload, the console at /admin/ui
(console/), the simulators a policy starts, and serving in a thread for tests and commands (embedded).

It imports the endpoints, the flow and everything below; only the commands and the CLI import it."""
