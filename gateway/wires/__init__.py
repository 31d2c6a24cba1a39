"""Pure translations between the wires the gateway speaks: one module per pair of APIs."""
