"""The ground floor every layer stands on: a deployment, the caller and its keys, errors and answers in
the clients' shapes, content helpers, metrics and logging.

It imports only the policy schema and the wire translations; everything else may import it."""
