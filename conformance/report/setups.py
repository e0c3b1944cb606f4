"""The setup and the ending a backend's reproduction snippets share on one case page, written once.

The snippets of one backend for one case start with the same lines (imports, the case's
gradients or network, its data), end with the same lines (reading the clipped gradients back
into numpy and printing them) and differ in between, from the call on: six paddle APIs made six
copies of everything but their calls. The page shows the shared lines once, as that backend's
setup and ending, and each snippet (and each cell's reproduction that has them) as the lines in
between: the setup, those lines and the ending, pasted in that order, are the snippet's code as
the suite wrote it, line for line (blank lines at the seams aside).

Text only, framework-agnostic: lines compared as written. A shared part begins and ends between
two top-level statements (brackets closed, not inside an indented block), so it reads as a whole
program, and every snippet keeps at least one line of its own.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

#: share a setup or an ending only when it spares at least this many bytes per snippet (a few
#: import lines are not worth another block to paste)
MIN_SHARED_BYTES = 200


def split_header(text: str) -> Tuple[List[str], List[str]]:
    """``(leading comment lines, the rest)``: a snippet's first comments name the cell it was
    written for and its case file, which differ between snippets that share everything else."""
    lines = text.splitlines()
    k = 0
    while k < len(lines) and lines[k].startswith("#"):
        k += 1
    return lines[:k], lines[k:]


def _boundaries(lines: Sequence[str]) -> List[bool]:
    """``b[k]`` (k = 0 .. len): whether ``lines[:k]`` ends between two top-level statements."""
    out, depth = [True], 0
    for k, line in enumerate(lines):
        depth += sum(line.count(o) for o in "([{") - sum(line.count(c) for c in ")]}")
        nxt = lines[k + 1] if k + 1 < len(lines) else ""
        out.append(depth == 0 and not line.rstrip().endswith((":", "\\")) and not nxt[:1].isspace())
    return out


def _alike(codes: Sequence[Sequence[str]], line) -> int:
    """How many lines ``line(code, i)`` (i = 0, 1, ...: from the start, or from the end) all
    ``codes`` have alike, leaving each at least one line of its own."""
    n = min(len(c) for c in codes) - 1
    k = 0
    while k < n and all(line(c, k) == line(codes[0], k) for c in codes[1:]):
        k += 1
    return k


def _big(lines: Sequence[str]) -> bool:
    return len("\n".join(lines)) >= MIN_SHARED_BYTES


def shared_setup(texts: Sequence[str]) -> List[str]:
    """The code lines every one of ``texts`` starts with (after its header comments), ending
    between statements; ``[]`` for fewer than two texts or under ``MIN_SHARED_BYTES``."""
    codes = [split_header(t)[1] for t in texts]
    if len(codes) < 2:
        return []
    k = _alike(codes, lambda c, i: c[i])
    ends = _boundaries(codes[0])
    k = max(j for j in range(k + 1) if ends[j])
    setup = codes[0][:k]
    while setup and not setup[-1].strip():  # a blank line belongs to what follows
        setup.pop()
    return setup if _big(setup) else []


def shared_ending(texts: Sequence[str]) -> List[str]:
    """The code lines every one of ``texts`` ends with, beginning between statements; ``[]`` for
    fewer than two texts or under ``MIN_SHARED_BYTES``."""
    codes = [split_header(t)[1] for t in texts]
    if len(codes) < 2:
        return []
    k = _alike(codes, lambda c, i: c[-1 - i])
    code = codes[0]
    starts = _boundaries(code)
    j = min(i for i in range(len(code) - k, len(code) + 1) if starts[i])
    ending = code[j:]
    while ending and not ending[0].strip():  # a blank line belongs to what comes before
        ending.pop(0)
    return ending if _big(ending) else []


def between(text: str, setup: Sequence[str], ending: Sequence[str]) -> Optional[Tuple[str, bool, bool]]:
    """``(text without the setup and the ending it has, whether it had the setup, whether it had
    the ending)``, its header comments kept; None where it has neither. At least one line of its
    own stays between them."""
    header, code = split_header(text)
    lead = len(setup) if setup and code[:len(setup)] == list(setup) else 0
    tail = len(ending) if ending and len(code) >= len(ending) and code[len(code) - len(ending):] == list(ending) else 0
    if lead + tail >= len(code):  # nothing of its own left: keep the ending in it
        tail = 0
    if lead + tail >= len(code):
        lead = 0
    if not lead and not tail:
        return None
    rest = code[lead:len(code) - tail]
    while rest and not rest[0].strip():
        rest.pop(0)
    while rest and not rest[-1].strip():
        rest.pop()
    return "\n".join(header + rest) + "\n", bool(lead), bool(tail)
