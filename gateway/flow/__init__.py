"""The request flow: the runtime a policy builds and the process-wide context that holds it, admission,
the attempt loop (dispatch), attempts with retries and hedges, delivering the answer (relay), resuming
broken streams (resume/), active probes, sharing state with other replicas, and the tracing hooks
(tracing.py; OpenTelemetry's spans in otel.py, sent to the export process of otel_sink.py and
otel_export.py, all imported only when traces are on).

It imports routing, providers, metering, state and the ground floor; the endpoints and the serving
shell import it."""
