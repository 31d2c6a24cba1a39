"""`switchyard spend`: totals of cost and tokens from the ledger, as a table or JSON."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from gateway.metering.ledger import ledger_files, read_ledger

BY = ("team", "app", "route", "provider", "model", "day")


@dataclass
class Row:
    key: str
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cost_usd: Decimal = Decimal(0)


def spend_report(lines: Iterable[Mapping[str, Any]], by: str = "team", since: date | None = None) -> list[Row]:
    """Rows by `by`, costliest first, and a last row named TOTAL. Charged attempts (a lost hedge leg,
    a stream that broke before another took over) add cost and tokens, not requests."""
    rows: dict[str, Row] = {}
    total = Row("TOTAL")
    for line in lines:
        day = str(line["ts"])[:10]
        if since is not None and day < since.isoformat():
            continue
        key = day if by == "day" else str(line[by])
        for row in (rows.setdefault(key, Row(key)), total):
            row.requests += line.get("kind", "request") == "request"
            row.input_tokens += int(line["input_tokens"])
            row.output_tokens += int(line["output_tokens"])
            row.cached_input_tokens += int(line["cached_input_tokens"])
            row.cost_usd += Decimal(str(line["cost_usd"]))
    ordered = sorted(rows.values(), key=lambda r: (-r.cost_usd, r.key))
    return ordered + [total]


def format_table(rows: list[Row], by: str) -> str:
    width = max([len(by)] + [len(r.key) for r in rows])
    head = f"{by:<{width}}  {'requests':>9}  {'input':>11}  {'output':>11}  {'cached':>10}  {'cost USD':>14}"
    lines = [head, "-" * len(head)]
    for r in rows:
        if r.key == "TOTAL":
            lines.append("-" * len(head))
        lines.append(f"{r.key:<{width}}  {r.requests:>9}  {r.input_tokens:>11}  {r.output_tokens:>11}  "
                     f"{r.cached_input_tokens:>10}  {r.cost_usd:>14.6f}")
    return "\n".join(lines)


def to_json(rows: list[Row], by: str) -> bytes:
    return orjson.dumps([{by: r.key, "requests": r.requests, "input_tokens": r.input_tokens,
                          "output_tokens": r.output_tokens, "cached_input_tokens": r.cached_input_tokens,
                          "cost_usd": format(r.cost_usd, "f")} for r in rows], option=orjson.OPT_INDENT_2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="switchyard spend", description="Totals of cost and tokens from the ledger.")
    p.add_argument("--ledger", required=True, help="the ledger file (rotated siblings FILE.* are read too)")
    p.add_argument("--by", choices=BY, default="team")
    p.add_argument("--since", type=date.fromisoformat, help="YYYY-MM-DD (UTC), inclusive")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    files = ledger_files(Path(args.ledger))
    if not files:
        print(f"switchyard spend: no ledger at {args.ledger}", file=sys.stderr)
        return 2
    rows = spend_report(read_ledger(files), args.by, args.since)
    if args.json:
        sys.stdout.buffer.write(to_json(rows, args.by) + b"\n")
    else:
        print(format_table(rows, args.by))
    return 0
