"""A backend's snippets on one case page share their setup and their ending, written once: what
is shared, where it starts and ends, and that the setup, each snippet's own lines and the ending,
pasted in that order, are the snippet's code again."""

from __future__ import annotations

from conformance.report.setups import MIN_SHARED_BYTES, between, shared_ending, shared_setup, split_header

DATA = "\n".join(f"p{i} = torch.tensor(np.array([{i}.0, 2.0, 3.0, 4.0]), dtype=torch.float32)  # gradient {i}"
                 for i in range(4))
SETUP = f"""import numpy as np
import torch

torch.set_num_threads(1)
params = []
{DATA}
names = ['a', 'b', 'c', 'd']"""
ENDING = """def numpy64(t):  # widen to float64
    return None if t is None else t.double().numpy()
result = {'returned': None if out is None else float(out),
          'grads': {n: numpy64(p.grad) for n, p in zip(names, params)}}
print('returned:', result['returned'])
for name, g in result['grads'].items():
    print(name, g)"""


def _snippet(cell: str, call: str) -> str:
    return f"# {cell}\n# case file: cases/x.yaml:3\n{SETUP}\n\nout = {call}\n\n{ENDING}\n"


A = _snippet("case[torch.nn.utils.clip_grad_norm_-float32-cpu]", "torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)")
B = _snippet("case[torch.nn.utils.clip_grad_value_-float32-cpu]", "torch.nn.utils.clip_grad_value_(params, clip_value=1.0)")


def _code(text: str) -> list:
    return [line for line in split_header(text)[1] if line.strip()]


def test_the_shared_lines_are_the_setup_and_the_ending_and_each_snippet_keeps_its_own():
    setup, ending = shared_setup([A, B]), shared_ending([A, B])
    assert "\n".join(setup) == SETUP and "\n".join(ending) == ENDING
    for text, call in ((A, "clip_grad_norm_"), (B, "clip_grad_value_")):
        own, had_setup, had_ending = between(text, setup, ending)
        assert had_setup and had_ending
        assert own.startswith("# case[")  # its own header comments stay
        assert [line for line in split_header(own)[1]] == [f"out = {text.split('out = ')[1].splitlines()[0]}"]
        assert call in own
        assert _code("\n".join(setup)) + _code(own) + _code("\n".join(ending)) == _code(text)  # pasted in order


def test_a_shared_part_begins_and_ends_between_statements():
    # the snippets differ inside a multi-line literal and inside a with-block: the setup stops
    # before the statement that holds the difference
    head = SETUP + "\nw = np.array([[1.0, 2.0],\n"
    one = f"# a\n{head}              [3.0, 4.0]])\nout = f(w)\n"
    two = f"# b\n{head}              [3.0, 5.0]])\nout = f(w)\n"
    assert "\n".join(shared_setup([one, two])) == SETUP
    block = SETUP + "\nwith torch.no_grad():\n    net.weight.copy_(w)\n"
    one, two = block + "    net.bias.zero_()\nout = 1\n", block + "    net.bias.fill_(1)\nout = 2\n"
    assert "\n".join(shared_setup([one, two])) == SETUP
    # two endings alike from inside an indented block on: the ending starts at the block's statement
    tail = "\n".join(f"    print({i}, 'same line of a loop body, long enough to be worth sharing')" for i in range(4))
    one, two = f"x = 1\nfor i in range(3):\n    a()\n{tail}\n", f"x = 2\nfor i in range(3):\n    b()\n{tail}\n"
    assert shared_ending([one, two]) == []  # only whole statements: the loop differs


def test_nothing_is_shared_that_is_too_small_or_alone_and_a_snippet_keeps_a_line():
    assert shared_setup([A]) == [] and shared_ending([A]) == []
    small = "import torch\nx = 1\n"
    assert len(small) < MIN_SHARED_BYTES and shared_setup([small + "a()\n", small + "b()\n"]) == []
    assert between("# other\nimport paddle\n", shared_setup([A, B]), shared_ending([A, B])) is None
    assert between(A, [], []) is None
    # a reproduction that is the setup and the ending alone keeps the ending as its own lines
    bare = f"# c\n{SETUP}\n{ENDING}\n"
    own, had_setup, had_ending = between(bare, shared_setup([A, B]), shared_ending([A, B]))
    assert had_setup and not had_ending and _code(own) == _code(ENDING)
