"""Simulated LLM providers that speak the real wire protocols and fail on a script.

Used by the tests, `recloser demo`, `recloser drill` and the benchmarks; `kind: sim` in a policy
starts one inside the gateway. Everything listens on loopback only.
"""

from gateway.sim.behaviour import ReceivedRequest, SimConfig
from gateway.sim.faults import Fault
from gateway.sim.server import SimServer

__all__ = ["Fault", "ReceivedRequest", "SimConfig", "SimServer"]
