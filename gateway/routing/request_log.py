"""What happened to one client request: each attempt on a deployment, and how the request ended.

Written by the attempt loop and the relay; read by the answer's headers, error messages and the meter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.core.auth import Caller
from gateway.core.deployment import Deployment
from gateway.providers.base import AttemptError, Call
from gateway.providers.transcript import Transcript
from gateway.routing.table import RouteTable


@dataclass(slots=True)
class AttemptRecord:
    deployment: Deployment
    started: float
    ended: float = 0.0
    ttft_s: float | None = None
    outcome: str = "ok"             # "ok", or the classification's reason
    role: str = "primary"           # primary | retry | failover | hedge | resume | probe
    lost_hedge: bool = False
    error: AttemptError | None = None
    partial: str | None = None      # the text a stream produced before it broke and another took over
    unrelayed: bytes | None = None  # a whole answer of no use (defective) that was not relayed: still charged
    paused_s: float = 0.0           # the gateway's own pauses while it waited for the first token
    span: object | None = None      # its trace span while open, when traces are on (gateway/flow/otel.py)

    @property
    def provider_ttft_s(self) -> float | None:
        """The time to first token that was the provider's: the gateway's own pauses taken out."""
        return None if self.ttft_s is None else max(0.0, self.ttft_s - self.paused_s)


@dataclass(slots=True)
class RequestLog:
    """Everything that happened to one client request's attempts: for headers, errors and metering.
    Slotted: one lives as long as its stream, thousands at once."""

    route: RouteTable
    call: Call
    caller: Caller
    started: float
    deadline: float
    attempts: list[AttemptRecord] = field(default_factory=list)
    skipped: list[tuple[Deployment, str, float | None]] = field(default_factory=list)  # why, back in s
    transcript: Transcript = field(default_factory=Transcript)   # what a relayed stream carried, folded
    panic: bool = False
    hedged: bool = False
    usage_injected: bool = False    # the gateway asked for stream usage; the client does not see it
    outcome: str = "ok"             # how the request ended for the client
    answered_by: Deployment | None = None
    body: bytes = b""               # a whole answer, as sent
    extra_headers: dict[str, str] = field(default_factory=dict)  # e.g. a budget warning
    # What the gateway did to save the answer, for the ledger: refused, prefill_rejected, resumed, restarted.
    events: list[str] = field(default_factory=list)
    dropped: tuple[str, ...] = ()          # features the answering target could not carry (x-recloser-dropped)
    refused_by: Deployment | None = None   # the deployment whose safety refusal was the answer
    trace: object | None = None            # its trace while open, when traces are on (gateway/flow/otel.py)
    held_s: float = 0.0                    # how long it waited, held, for a target to come back (hold_s)

    def remaining(self, now: float) -> float:
        return self.deadline - now
