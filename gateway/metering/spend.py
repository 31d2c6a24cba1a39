"""`recloser spend`: totals of cost and tokens from the ledger, as a table or JSON, with what local
pools saved beside the cost (their tokens priced at each route's first frontier target), and apart
from it what callers' own credentials paid (`paid_by: client`, at list price).

The report is pure (ledger lines in, rows out); `main` is the thin command around it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import orjson

from gateway.metering.ledger import ledger_files, read_ledger

By = Literal["team", "app", "route", "provider", "model", "day"]
BY: tuple[By, ...] = ("team", "app", "route", "provider", "model", "day")
TOTAL = "TOTAL"
UNKNOWN = "(none)"


@dataclass
class Row:
    key: str
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    savings_usd: Decimal = Decimal(0)     # what local pools' answers would have cost at the frontier
    client_paid_usd: Decimal = Decimal(0)  # list price of answers on callers' own credentials (not in cost_usd)


def _money(value: Any) -> Decimal:
    try:
        return Decimal(str(value if value is not None else 0))
    except InvalidOperation:
        return Decimal(0)


def _day(ts: Any) -> str:
    """The UTC day of a ledger time: ours are ISO-8601 UTC strings, whose day is their first ten characters."""
    if isinstance(ts, (int, float)):
        return datetime.fromtimestamp(ts, UTC).date().isoformat()
    return str(ts)[:10]


def spend_report(lines: Iterable[Mapping[str, Any]], by: By | str = "team", since: date | None = None) -> list[Row]:
    """Rows by `by`, costliest first, then a last row named TOTAL.

    Charged attempts (a lost hedge leg, a stream that broke before another took over) add cost and
    tokens, not requests: the client made one request however many deployments it took.
    """
    if by not in BY:
        raise ValueError(f"cannot group spend by {by!r}; choose one of {', '.join(BY)}")
    rows: dict[str, Row] = {}
    total = Row(TOTAL)
    first_day = since.isoformat() if since is not None else None
    for line in lines:
        day = _day(line.get("ts"))
        if first_day is not None and day < first_day:
            continue
        key = day if by == "day" else str(line.get(by) or UNKNOWN)
        cost, saved = _money(line.get("cost_usd", 0)), _money(line.get("savings_usd"))
        is_request = line.get("kind", "request") == "request"
        client_paid = line.get("paid_by") == "client"
        for row in (rows.setdefault(key, Row(key)), total):
            row.requests += int(is_request)
            row.input_tokens += int(line.get("input_tokens") or 0)
            row.output_tokens += int(line.get("output_tokens") or 0)
            row.cached_input_tokens += int(line.get("cached_input_tokens") or 0)
            if client_paid:
                row.client_paid_usd += cost
            else:
                row.cost_usd += cost
            row.savings_usd += saved
    ordered = sorted(rows.values(), key=lambda r: (-r.cost_usd, r.key))
    return [*ordered, total]


def format_table(rows: list[Row], by: str = "key") -> str:
    """Aligned columns, cost to the micro-dollar; the last row (the total) set off by a rule."""
    width = max([len(by), *(len(r.key) for r in rows)])
    head = (f"{by:<{width}}  {'requests':>9}  {'input':>12}  {'output':>12}  {'cached':>12}  "
            f"{'cost USD':>16}  {'savings USD':>16}  {'client-paid USD':>16}")
    out = [head, "-" * len(head)]
    for i, r in enumerate(rows):
        if i == len(rows) - 1 and i > 0:
            out.append("-" * len(head))
        out.append(f"{r.key:<{width}}  {r.requests:>9}  {r.input_tokens:>12}  {r.output_tokens:>12}  "
                   f"{r.cached_input_tokens:>12}  {r.cost_usd:>16.6f}  {r.savings_usd:>16.6f}  "
                   f"{r.client_paid_usd:>16.6f}")
    return "\n".join(out)


def to_json(rows: list[Row], by: str = "key") -> bytes:
    """The rows as a JSON list; each cost and saving a decimal string, exact."""
    return orjson.dumps([{by: r.key, "requests": r.requests, "input_tokens": r.input_tokens,
                          "output_tokens": r.output_tokens, "cached_input_tokens": r.cached_input_tokens,
                          "cost_usd": format(r.cost_usd, "f"), "savings_usd": format(r.savings_usd, "f"),
                          "client_paid_usd": format(r.client_paid_usd, "f")}
                         for r in rows], option=orjson.OPT_INDENT_2)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recloser spend", description="Totals of cost and tokens from the spend ledger.")
    p.add_argument("--ledger", required=True, metavar="FILE",
                   help="the ledger file; its rotated siblings FILE.<YYYYmmdd-HHMMSS> are read too")
    p.add_argument("--by", choices=BY, default="team", help="group by (default: team)")
    p.add_argument("--since", type=date.fromisoformat, metavar="YYYY-MM-DD", help="from this UTC day on, inclusive")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    return p


def main(argv: list[str] | None = None) -> int:
    """`recloser spend`; returns the exit status (2: bad arguments or no ledger)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:          # argparse has printed why (or the help); return, don't exit
        return exc.code if isinstance(exc.code, int) else 2
    files = ledger_files(Path(args.ledger))
    if not files:
        print(f"recloser spend: no ledger at {args.ledger} (nor rotated files {args.ledger}.*); "
              "is metering.ledger.path set in the policy?", file=sys.stderr)
        return 2
    try:
        rows = spend_report(read_ledger(files), args.by, args.since)
    except OSError as exc:
        print(f"recloser spend: cannot read the ledger: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(to_json(rows, args.by).decode())
    else:
        print(format_table(rows, args.by))
    return 0
