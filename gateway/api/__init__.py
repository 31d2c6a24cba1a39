"""The HTTP endpoints clients call (chat, completions, embeddings, Responses, Messages, models, admin)
and the checks on what they send.

It imports the flow and below; only the serving shell imports it."""
