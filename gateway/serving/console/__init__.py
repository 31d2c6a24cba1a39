"""The live console at /admin/ui: one page, a stylesheet and a small script shipped in the package (no
build step, no CDN), reading `GET /admin/state` with an admin key; the state is a pure snapshot
(state.py) of what the gateway holds in memory. Part of the serving shell."""
