"""The request flow: the runtime a policy builds and the process-wide context that holds it, admission,
the attempt loop (dispatch), attempts with retries and hedges, delivering the answer (relay), resuming
broken streams (resume/), active probes, and sharing state with other replicas.

It imports routing, providers, metering, state and the ground floor; the endpoints and the serving
shell import it."""
