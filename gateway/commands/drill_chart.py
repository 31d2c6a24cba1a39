"""`recloser drill --chart FILE.png|svg`: success and traffic share per phase, breakers on against off.

matplotlib is an optional extra (`pip install 'recloser[chart]'`), imported only when a chart is asked for.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from gateway.commands.drill import PhaseReport

FORMATS = (".png", ".svg")
PROVIDERS = ("primary", "secondary", "local-gpu")
COLOURS = {"primary": "#4C72B0", "secondary": "#DD8452", "local-gpu": "#55A868", "failed": "#C44E52"}
RUN_COLOURS = {"on": "#2A9D8F", "blind": "#8172B3", "off": "#8C8C8C"}   # apart from the providers' colours


class ChartUnavailable(Exception):
    pass


def check_chart(path: Path) -> None:
    """Whether a chart can be drawn to `path`: a known format, and matplotlib installed."""
    if path.suffix.lower() not in FORMATS:
        raise ChartUnavailable(f"--chart {path}: the file must end in .png or .svg")
    if importlib.util.find_spec("matplotlib") is None:
        raise ChartUnavailable("--chart needs matplotlib: pip install 'recloser[chart]'")


def shares(r: PhaseReport) -> dict[str, float]:
    """Of all requests in the phase: the share each provider answered, and the share that failed."""
    counts = Counter(s.provider if s.ok else "failed" for s in r.samples)
    total = max(1, len(r.samples))
    return {k: 100 * counts[k] / total for k in (*PROVIDERS, "failed")}


def draw_chart(on: Sequence[PhaseReport], off: Sequence[PhaseReport], blind: PhaseReport | None,
               path: Path) -> None:
    try:
        import matplotlib
    except ImportError as e:   # check_chart said yes, but an import can still fail (a broken install)
        raise ChartUnavailable("--chart needs matplotlib: pip install 'recloser[chart]'") from e
    matplotlib.use("Agg")      # files only: no display, whatever the environment asks for
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    names = [r.name for r in on]
    # Each phase: its runs side by side (on, the blind run where there is one, off).
    runs = [[("on", a)] + ([("blind", blind)] if blind is not None and blind.name == a.name else []) + [("off", b)]
            for a, b in zip(on, off, strict=True)]
    width = 0.36
    xs: list[float] = []
    labels: list[str] = []
    bars: list[tuple[str, PhaseReport]] = []
    centres = []
    x = 0.0
    for group in runs:
        first = x
        for label, r in group:
            xs.append(x)
            labels.append(label)
            bars.append((label, r))
            x += width + 0.04
        centres.append((first + x - width - 0.04) / 2)
        x += 0.5

    # Success alone hides what breakers are for (with failover, the drill's clients mostly succeed either
    # way): latency shows who waited for a broken primary.
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(11, 9), sharex=True,
                                              gridspec_kw={"height_ratios": [0.8, 1, 1.4]})
    colours = [RUN_COLOURS[label] for label in labels]
    top.bar(xs, [100 * r.success_rate() for _, r in bars], width, color=colours)
    top.set_ylim(0, 105)
    top.set_ylabel("client success %")
    fig.suptitle("recloser drill: breakers on against off, phase by phase")
    top.legend(handles=[Patch(color=c, label="breakers on, blind to quality" if k == "blind" else f"breakers {k}")
                        for k, c in RUN_COLOURS.items()], loc="lower center", bbox_to_anchor=(0.5, 1.0),
               fontsize=8, ncols=3, frameon=False)   # above the bars, which reach the top when all succeed
    top.grid(axis="y", alpha=0.3)

    middle.bar(xs, [1000 * r.latency(50) for _, r in bars], width, color=colours)
    middle.scatter(xs, [1000 * r.latency(99) for _, r in bars], marker="_", s=300, color="black", zorder=3)
    middle.set_yscale("log")
    middle.set_ylabel("latency ms (log)")
    middle.legend(handles=[Patch(color="lightgrey", label="p50"),
                           Line2D([], [], color="black", marker="_", markersize=14, linestyle="", label="p99")],
                  loc="upper left", fontsize=8)
    middle.grid(axis="y", alpha=0.3, which="both")

    bottom_of = [0.0] * len(bars)
    for kind in (*PROVIDERS, "failed"):
        heights = [shares(r)[kind] for _, r in bars]
        bottom.bar(xs, heights, width, bottom=bottom_of, color=COLOURS[kind], label=kind)
        bottom_of = [b + h for b, h in zip(bottom_of, heights, strict=True)]
    for xi, label in zip(xs, labels, strict=True):
        bottom.text(xi, 102, label, ha="center", va="bottom", fontsize=7)
    bottom.set_ylim(0, 112)
    bottom.set_ylabel("traffic share % (of all requests)")
    bottom.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=4, fontsize=8)
    bottom.set_xticks(centres, names)
    fig.tight_layout()
    fig.savefig(path, format=path.suffix.lower().lstrip("."))
    plt.close(fig)
