"""Pure translations between the wires the gateway speaks: one module per pair of APIs.

The ground floor of the house: nothing here imports the endpoints, routing, dispatch or attempts,
so the upstream clients and the inbound endpoints can both use them.
"""
