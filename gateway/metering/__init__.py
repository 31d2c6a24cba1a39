"""Metering: prices, usage, cost, the spend ledger (and its attempt journal), budgets and savings.

It imports routing (the request log), policy and the ground floor; the flow and the serving shell import it."""
