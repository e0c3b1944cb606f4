"""HTML report rendered from a results document only (never from a framework).

    from conformance.report import render
    index_html = render(doc, "reports/latest")   # doc: the results JSON as a dict
"""

from .render import STATUSES, build_context, fmt_num, render, render_html

__all__ = ["render", "render_html", "build_context", "fmt_num", "STATUSES"]
