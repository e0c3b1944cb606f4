"""Inline SVG plots of a results document (matplotlib, Agg; no browser-side plotting library).

matplotlib is optional (the ``report`` extra): it is imported lazily, and without it every plot
is replaced by a sentence saying why it is absent. Output is deterministic (``svg.hashsalt``,
no date metadata) and text drawn from the document passes :func:`_label` first, which keeps
only a small safe character set: an API name or dtype cannot carry markup into the SVG (which
the page inserts as-is), and matplotlib escapes what remains anyway.
"""

from __future__ import annotations

import io
import math
import re
from collections import defaultdict
from typing import Any, Dict, List, Optional

#: Relative errors of exactly 0 are drawn at this floor on the log axis (and said so).
REL_FLOOR = 1e-17
#: Clipping factors of 0 (a gradient zeroed) are drawn at this floor of the log-log plot.
FACTOR_FLOOR = 1e-6
#: At most this many strip rows (API x dtype) in the error plot; the rest are summed up in a note.
MAX_ROWS = 40

_SAFE = re.compile(r"[^A-Za-z0-9_.\-+ =,:()\[\]/]")


def _label(text: Any) -> str:
    return _SAFE.sub("?", str(text))[:80]


def _pyplot():
    """(pyplot, None) or (None, why-absent)."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except Exception as e:  # ImportError, or a broken install: the report still renders
        return None, "matplotlib is not installed (pip install matplotlib; in a clone: pip install -e '.[report]'): %s" % type(e).__name__
    return plt, None


def _svg(fig) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "gradclip-report", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight", dpi=120)
    text = buf.getvalue()
    start = text.find("<svg")  # drop the XML declaration and DOCTYPE: inline SVG needs neither
    text = text[start:] if start >= 0 else ""
    # nor namespace declarations (the HTML parser puts <svg> in the SVG namespace and knows
    # xlink:href): without them the page holds no URL at all
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)  # RDF boilerplate
    text = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", text)
    # geometry to a hundredth of a point (matplotlib writes six decimals: a third of a pair page's
    # bytes), and no indentation between elements
    text = _GEOMETRY.sub(lambda m: m.group(1) + _NUMBER.sub(_short, " ".join(m.group(2).split())) + '"', text)
    return _lean(_DOTS.sub(_lift_style, re.sub(r">\s+<", "><", text)))


_FONT = re.compile(r"font-family: [^;\"]*(?:; |;)?")
_NO_ROTATION = re.compile(r' transform="rotate\(-?0 [^"]*\)"')
_ID = re.compile(r' id="([^"]*)"')
#: a marker matplotlib draws as a circle of four Bezier curves (about 300 bytes a marker; a plot
#: has dozens): a <circle> of its radius draws the same
_CIRCLE = re.compile(r'<path id="([^"]+)" d="M 0 ([\d.]+) C [-\d. C]+ 0 \2 z"( style="[^"]*")?/>')


#: a group of plain dots of one fill (``_lift_style``), each a <use> of one marker
_DOT_GROUP = re.compile(r'<g clip-path="([^"]*)" style="fill: (#[0-9a-f]{6}); fill-opacity: ([\d.]+)">((?:<use xlink:href="#[^"]+" x="[-\d.]+" y="[-\d.]+"/>)+)</g>')
_USE_AT = re.compile(r'<use xlink:href="#([^"]+)" x="([-\d.]+)" y="([-\d.]+)"/>')


def _stroked(m: "re.Match", radius: Dict[str, str]) -> str:
    """A group of round dots of one marker as one path of zero-length round-capped strokes
    (``M x y h0`` a dot: about 15 bytes where a <use> was 45); kept when its marker is not a
    plain circle. Dots of one path do not darken where they overlap, as separate ones did."""
    uses = _USE_AT.findall(m.group(4))
    ids = {u[0] for u in uses}
    linked = m.string.rfind("<a ", 0, m.start()) > m.string.rfind("</a>", 0, m.start())  # one linked dot: kept
    if linked or len(ids) != 1 or next(iter(ids)) not in radius:
        return m.group(0)
    width = _short_text(2 * float(radius[uses[0][0]]))
    return '<path clip-path="%s" d="%s" style="fill: none; stroke: %s; stroke-opacity: %s; stroke-width: %s; stroke-linecap: round"/>' % (
        m.group(1), "".join("M%s %sh0" % (x, y) for _, x, y in uses), m.group(2), m.group(3), width)


def _short_text(value: float) -> str:
    return ("%.2f" % value).rstrip("0").rstrip(".")


#: the styles matplotlib repeats on every grid line, tick, spine and tick label, as classes of
#: style.css (about 0.45 MB of a make report's plots)
STYLE_CLASSES = {
    "fill: none; stroke: #b0b0b0; stroke-opacity: 0.3; stroke-width: 0.8; stroke-linecap: square": "pg",
    "stroke: #000000; stroke-width: 0.8": "pk",
    "fill: none; stroke: #000000; stroke-width: 0.8; stroke-linejoin: miter; stroke-linecap: square": "pa",
    "font-size: 10px; text-anchor: middle": "p10m",
    "font-size: 7px; text-anchor: start": "p7s",
    "font-size: 7px; text-anchor: end": "p7e",
}
_STYLE_ATTR = re.compile(r' style="([^"]*)"')


def _lean(svg: str) -> str:
    """What matplotlib writes that draws nothing here, left out (pair pages are mostly their
    plot): the font fallback list on every text (said once, on the <svg>), the no-op
    ``rotate(-0 ...)`` of every tick label, the ids nothing refers to (``figure_1``,
    ``patch_1``, ``text_12``...), and each circular marker's four Bezier curves (a <circle>)."""
    svg = _NO_ROTATION.sub("", _FONT.sub("", svg)).replace(' style=""', "")
    svg = _CIRCLE.sub(lambda m: '<circle id="%s" r="%s"%s/>' % (m.group(1), m.group(2), m.group(3) or ""), svg)
    radius = dict(re.findall(r'<circle id="([^"]+)" r="([\d.]+)"/>', svg))  # plain markers (a legend's has a style)
    svg = _DOT_GROUP.sub(lambda m: _stroked(m, radius), svg)
    used = set(re.findall(r"#([^\")\s]+)", svg))
    svg = _ID.sub(lambda m: m.group(0) if m.group(1) in used else "", svg)
    svg = re.sub(r'<defs><circle r="[\d.]+"/></defs>', "", svg)  # a marker no dot uses any more
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)  # matplotlib's TeX source of each tick label
    svg = _STYLE_ATTR.sub(lambda m: ' class="%s"' % STYLE_CLASSES[m.group(1)] if m.group(1) in STYLE_CLASSES else m.group(0), svg)
    while "<g/>" in svg or "<g></g>" in svg:  # groups left empty
        svg = svg.replace("<g/>", "").replace("<g></g>", "")
    return svg.replace("<svg ", '<svg style="font-family: sans-serif" ', 1)


#: a group of markers (no group inside): matplotlib writes each marker's fill on the marker
_DOTS = re.compile(r'<g clip-path="([^"]*)">((?:(?!<g[ >]|</g>).)*)</g>', re.S)
_USE_STYLE = re.compile(r'(<use [^>]*?) style="([^"]*)"')


def _lift_style(m: "re.Match") -> str:
    """The group with its markers' one style on it instead of on each (fill and fill-opacity
    inherit; about 40 bytes a dot, a tenth of a pair page); a group whose markers differ stays."""
    found = _USE_STYLE.findall(m.group(2))
    styles = {style for _, style in found}
    if len(styles) != 1 or m.group(2).count("<use ") != len(found):
        return m.group(0)
    return '<g clip-path="%s" style="%s">%s</g>' % (m.group(1), styles.pop(), _USE_STYLE.sub(r"\1", m.group(2)))


_GEOMETRY = re.compile(r'(\s(?:d|x|y|x1|x2|y1|y2|width|height|viewBox|transform|points)=")([^"]*)"')
_NUMBER = re.compile(r"-?\d+\.\d+")


def _short(m) -> str:
    text = ("%.2f" % float(m.group(0))).rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _plain_ticks(*axes) -> None:
    """Log-axis tick labels as plain text (``1e-15``): matplotlib's ``10^{-15}`` is mathtext, one
    positioned <tspan> per character in the SVG, about a fifth of a pair plot's bytes."""
    from matplotlib.ticker import FuncFormatter

    for axis in axes:
        axis.set_major_formatter(FuncFormatter(lambda v, _: "%g" % v))


def _number(value: Any) -> Optional[float]:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x


STATUS_COLOURS = {"match": "#1a7f37", "known": "#0a58ca", "mismatch": "#cf222e", "error": "#9a3412", "unstable": "#8250df"}


def rel_error_plot(cells: List[Dict[str, Any]]) -> Dict[str, str]:
    """Distribution of each cell's max relative error per (API, dtype), on a log axis: the cells
    are counted in half-decade bins and each (bin, status) drawn as one dot whose area grows with
    the count, so twenty thousand cells cost a few hundred SVG elements, not twenty thousand.

    Returns ``{"svg": ..., "note": ...}``; ``svg`` is empty when there is nothing to draw or no
    matplotlib (``note`` says which)."""
    bins: Dict[tuple, Dict[tuple, int]] = defaultdict(lambda: defaultdict(int))
    zeros = 0
    for c in cells:
        x = _number(c.get("max_rel_err"))
        status = c.get("status")
        if x is None or status not in STATUS_COLOURS or math.isnan(x) or math.isinf(x):
            continue
        if x == 0:
            zeros += 1
        b = math.floor(2 * math.log10(max(x, REL_FLOOR)))  # half-decade bins
        bins[(str(c.get("api") or "?"), str(c.get("dtype") or "?"))][(b, status)] += 1
    if not bins:
        return {"svg": "", "note": "No cell with a finite relative error to plot."}
    plt, why = _pyplot()
    if plt is None:
        return {"svg": "", "note": why}
    keys = sorted(bins)
    left_out = len(keys) - MAX_ROWS
    keys = keys[:MAX_ROWS]
    offsets = {s: (i - 1.5) * 0.18 for i, s in enumerate(STATUS_COLOURS)}  # statuses side by side
    fig, ax = plt.subplots(figsize=(9, 0.3 * len(keys) + 1.4))
    try:
        for status, colour in STATUS_COLOURS.items():
            xs, ys, sizes = [], [], []
            for y, key in enumerate(keys):
                for (b, st), n in bins[key].items():
                    if st == status:
                        xs.append(10 ** ((b + 0.5) / 2))
                        ys.append(y + offsets[status])
                        sizes.append(6 + 10 * math.sqrt(n))
            if xs:
                ax.scatter(xs, ys, s=sizes, color=colour, alpha=0.7, linewidths=0, label=status,
                           rasterized=True)  # (as in factor_plot: the axes stay text)
        ax.set_xscale("log")
        _plain_ticks(ax.xaxis)
        ax.set_yticks(range(len(keys)))
        ax.set_yticklabels([_label("%s  %s" % k) for k in keys], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("max relative error against the source API's oracle (log; half-decade bins; "
                      "dot area ~ cell count; 0 drawn at %g)" % REL_FLOOR, fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        svg = _svg(fig)
    finally:
        plt.close(fig)
    note = "%d cells with relative error exactly 0." % zeros if zeros else ""
    if left_out > 0:
        note += " %d further API/dtype rows left out of the plot." % left_out
    return {"svg": svg, "note": note.strip()}


def factor_plot(cells: List[Dict[str, Any]]) -> Dict[str, str]:
    """Scatter of the clipping factor each API applied (||clipped|| / ||raw||, per parameter)
    against the factor of the source API's oracle: on the diagonal the API scaled like the
    source; a per-tensor API standing in for a global one leaves it."""
    pts: Dict[str, set] = defaultdict(set)
    for c in cells:
        for p in (c.get("params") or {}).values():
            f = p.get("factor") if isinstance(p, dict) else None
            if not isinstance(f, dict):
                continue
            got, want = _number(f.get("got")), _number(f.get("want"))
            if got is None or want is None or not (math.isfinite(got) and math.isfinite(want)):
                continue
            pts[c.get("backend") or "?"].add((round(want, 3), round(got, 3)))  # one dot per visible spot
    if not pts:
        return {"svg": "", "note": "No clipping factor in these results (schema-2 documents carry them)."}
    plt, why = _pyplot()
    if plt is None:
        return {"svg": "", "note": why}
    colours = ["#ee4c2c", "#0a58ca", "#1a7f37", "#8250df", "#9a3412"]
    # log-log: the factors of interest are in (0, 1], but a "clip" may also amplify (MindSpore's
    # signed p-norms give factors of 1e5) or zero a gradient; zeros are drawn at FACTOR_FLOOR
    fig, ax = plt.subplots(figsize=(5.5, 5))
    lo, hi, zeros, above = FACTOR_FLOOR, 1.0, 0, 0
    try:
        for i, (backend, xy) in enumerate(sorted(pts.items())):
            xs = [max(x, FACTOR_FLOOR) for x, _ in sorted(xy)]
            ys = [max(y, FACTOR_FLOOR) for _, y in sorted(xy)]
            zeros += sum(1 for x, y in xy if x <= 0 or y <= 0)
            above += sum(1 for _, y in xy if y > 1.001)  # beyond float rounding of an untouched tensor
            hi = max(hi, max(xs), max(ys))
            # rasterized: one point per cell made a 500 KB SVG on a full run; the points become
            # one embedded image, the axes and labels stay text
            ax.scatter(xs, ys, s=12, alpha=0.5, linewidths=0, color=colours[i % len(colours)],
                       label=_label(backend), rasterized=True)
        ax.plot([lo, hi], [lo, hi], color="#6e7781", linewidth=0.8, linestyle="--", label="same as the oracle")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_ticks(ax.xaxis, ax.yaxis)
        ax.set_xlim(lo / 2, hi * 2)
        ax.set_ylim(lo / 2, hi * 2)
        ax.set_xlabel("oracle's factor (source API), per parameter (log)")
        ax.set_ylabel("factor the target API applied (log)")
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(alpha=0.3)
        svg = _svg(fig)
    finally:
        plt.close(fig)
    note = "Factor = L2 norm of a clipped gradient / L2 norm of the same gradient before clipping."
    if zeros:
        note += " %d points with a factor 0 drawn at %g." % (zeros, FACTOR_FLOOR)
    if above:
        note += " %d points where the target API scaled a gradient up (factor > 1.001)." % above
    return {"svg": svg, "note": note}


#: a pair's plot links at most this many cells one by one (the rest are counted in bins)
MAX_LINKED = 60


def pair_error_plot(rows: List[tuple]) -> Dict[str, str]:
    """One API pair's cells: each cell's max relative error over the rtol it was judged with
    (so one vertical line, at 1, is the tolerance of every dtype), one row per group of
    conditions (``rows``: ``[(label, [cell, ...]), ...]``, a cell being ``{"ratio", "status",
    "id", "href"}``). Matching cells are counted in half-decade bins (dot area ~ count); each
    other cell is a dot of its own that names the cell (an SVG ``<title>``: the tooltip) and
    links to it on its case page, up to ``MAX_LINKED`` (cells of one status on one spot, to a
    hundredth of a decade, are one dot: its title counts the others, which it hides anyway). Cells with no error to show (raised,
    unsupported) are counted in the note."""
    drawn = [(label, [c for c in cells if c["ratio"] is not None and math.isfinite(c["ratio"])])
             for label, cells in rows]
    drawn = [(label, cells) for label, cells in drawn if cells]
    if not drawn:
        return {"svg": "", "note": "No cell of this pair has a finite error to plot."}
    plt, why = _pyplot()
    if plt is None:
        return {"svg": "", "note": why}
    titles: Dict[str, str] = {}
    linked = 0
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(drawn) + 1.3))
    try:
        for y, (label, cells) in enumerate(drawn):
            bins: Dict[tuple, int] = defaultdict(int)
            singles = []
            at: Dict[tuple, Dict[str, Any]] = {}  # cells drawn on one spot: one dot, one title
            for c in cells:
                spot = (c["status"], round(math.log10(max(c["ratio"], REL_FLOOR)), 2))
                if spot in at:
                    at[spot]["more"] += 1
                elif c["status"] != "match" and c["status"] in STATUS_COLOURS and linked < MAX_LINKED and c["href"]:
                    at[spot] = c = dict(c, more=0)
                    singles.append(c)
                    linked += 1
                elif c["status"] in STATUS_COLOURS:
                    bins[(math.floor(2 * math.log10(max(c["ratio"], REL_FLOOR))), c["status"])] += 1
            for status, colour in STATUS_COLOURS.items():
                pts = [(10 ** ((b + 0.5) / 2), n) for (b, st), n in bins.items() if st == status]
                # a dot's area grows with its count, in steps (1, 2-4, 5-16, ... cells): one size
                # per scatter call, which the SVG writes as one marker used many times, where a
                # size per dot wrote every dot's own path
                for step in sorted({_size_step(n) for _, n in pts}):
                    xs = [x for x, n in pts if _size_step(n) == step]
                    ax.scatter(xs, [y] * len(xs), s=6 + 10 * 2 ** step, color=colour, alpha=0.5, linewidths=0)
                mine = [c for c in singles if c["status"] == status]
                if mine:
                    urls = ["%s#%d" % (c["href"], len(titles) + i) for i, c in enumerate(mine)]
                    for url, c in zip(urls, mine):
                        titles[url] = c["id"] + (" and %d more cell%s on this spot" % (c["more"], "s" if c["more"] > 1 else "")
                                                 if c["more"] else "")
                    ax.scatter([max(c["ratio"], REL_FLOOR) for c in mine], [y + 0.15] * len(mine), s=16,
                               color=colour, alpha=0.9, linewidths=0, urls=urls)
        for status, colour in STATUS_COLOURS.items():
            ax.scatter([], [], color=colour, label=status, s=16)
        ax.axvline(1.0, color="#6e7781", linestyle="--", linewidth=0.9, label="tolerance (rtol)")
        ax.set_xscale("log")
        _plain_ticks(ax.xaxis)
        ax.set_yticks(range(len(drawn)))
        ax.set_yticklabels([_label(label) for label, _ in drawn], fontsize=7)
        ax.set_ylim(len(drawn) - 0.5, -0.5)
        ax.set_xlabel("max relative error / rtol of the cell's dtype (log; 0 drawn at %g)" % REL_FLOOR, fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        svg = _svg(fig)
    finally:
        plt.close(fig)
    svg = _linked(svg, titles)
    left = sum(len(cells) for _, cells in rows) - sum(len(cells) for _, cells in drawn)
    note = "%d cells with no finite error (raised, unsupported or non-finite) are not drawn." % left if left else ""
    return {"svg": svg, "note": note}


def _size_step(n: int) -> int:
    """0 for one cell, 1 for 2-4, 2 for 5-16, ...: a dot of ``n`` cells is drawn as one of ``4**step``
    (its area grows with the square root of the count, as before the steps)."""
    return max(0, math.ceil(math.log(n, 4) - 1e-9)) if n > 1 else 0


def _linked(svg: str, titles: Dict[str, str]) -> str:
    """Give each linked dot its tooltip (an SVG ``<title>`` naming the cell, escaped) and open
    its link in the same tab. matplotlib writes ``<a xlink:href="URL#n" target="_blank">`` (the
    ``#n`` only kept URLs apart here: it is dropped again)."""
    from markupsafe import escape

    def one(m):
        url = m.group(1)
        title = titles.get(url)
        href = url.rsplit("#", 1)[0] if title is not None else url
        return '<a xlink:href="%s">%s' % (escape(href), "<title>%s</title>" % escape(title) if title else "")
    return _LINKED_RUN.sub(_one_group, re.sub(r'<a xlink:href="([^"]*)"(?: target="_blank")?>', one, svg))


#: a run of linked dots, each ``<a ..><title>..</title><g clip-path=C style=S><use ../></g></a>``
_LINKED_DOT = r'<a xlink:href="[^"]*">(?:<title>[^<]*</title>)?<g clip-path="[^"]*" style="[^"]*"><use [^>]*/></g></a>'
_LINKED_RUN = re.compile("(?:%s)+" % _LINKED_DOT)
_LINKED_PARTS = re.compile(r'(<a xlink:href="[^"]*">(?:<title>[^<]*</title>)?)<g clip-path="([^"]*)" style="([^"]*)">(<use [^>]*/>)</g></a>')


def _one_group(m: "re.Match") -> str:
    """A run of linked dots of one clip and style as one group that carries them (each dot's
    own group was about 80 bytes); a run whose dots differ stays as it is."""
    dots = _LINKED_PARTS.findall(m.group(0))
    if len({(clip, style) for _, clip, style, _ in dots}) != 1:
        return m.group(0)
    return '<g clip-path="%s" style="%s">%s</g>' % (dots[0][1], dots[0][2], "".join(a + use + "</a>" for a, _, _, use in dots))
