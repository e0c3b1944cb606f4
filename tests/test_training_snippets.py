"""Training-cell reproduction snippets run in their framework and give the cell's numbers: the
source's oracle where the cell matches, the declared difference's variant where it is known."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conformance import frameworks, registry
from conformance.plan import plan
from conformance.runner import Runner
from conformance.spec.load import load_paths

pytestmark = pytest.mark.framework  # runs in the framework envs (tests/framework_mark.py)

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "cases" / "training"

# the parameters each snippet ends with, dumped as JSON (torch layout for Paddle's weights)
DUMP = {
    "torch": "print('JSON', json.dumps({k: p.detach().double().numpy().tolist() for k, p in named.items()}))",
    "paddle": "print('JSON', json.dumps({k: (p.numpy().T if k.endswith('weight') else p.numpy())"
              ".astype(np.float64).tolist() for k, p in named.items()}))",
    "mindspore": "print('JSON', json.dumps({k: p.value().astype(ms.float32).asnumpy().astype(np.float64)"
                 ".tolist() for k, p in named.items()}))",
}

CELLS = [  # (backend, case, keyword, variant knobs of the declared difference or None)
    ("torch", "train-scaler-overflow-skipped", "float32", None),
    ("torch", "train-sgd-groups", "float32", None),
    ("paddle", "train-sgd-groups", "float32 and not grad_clip", {"group_lr": "multiply"}),
    ("paddle", "train-sgd-two-groups-clip", "float64 and grad_clip", {"clip_scope": "per_group"}),
    ("paddle", "train-scaler-overflow-skipped", "float32", {"scaler": "disabled"}),
    ("mindspore", "train-scaler-dynamic-update", "DynamicLossScaler and 4.0",
     {"backoff": "divide_growth", "min_scale": 1.0}),
    ("mindspore", "train-accumulate-4", "float32", None),
]


def _python(name):
    if name == "torch":
        return sys.executable if frameworks.installed_here("torch") else None
    python = frameworks.default_python(name)
    venv = ROOT / f".venv-{name}" / "bin" / "python"
    return python or (str(venv) if venv.exists() else None)


@pytest.mark.parametrize("backend,case,keyword,variant", CELLS, ids=[f"{c[0]}-{c[1]}" for c in CELLS])
def test_snippet_reproduces_the_cell(backend, case, keyword, variant, tmp_path):
    python = _python(backend)
    if python is None:
        pytest.skip(f"no interpreter with {backend}")
    reg = registry.load()
    loaded = load_paths([CASES / f"{case}.yaml"])
    (cell,) = plan(loaded.cases, reg, backends={backend}, device="cpu", keyword=keyword).cells
    prepared = cell.kind.prepare(Runner(reg, pool=None), cell)
    text = prepared.snippet()
    script = tmp_path / "snippet.py"
    script.write_text(text + "import json\n" + DUMP[backend] + "\n")
    r = subprocess.run([python, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(next(line for line in r.stdout.splitlines() if line.startswith("JSON "))[5:])
    want = prepared.hooks.oracle(variant).outputs
    rtol, atol = (1e-7, 1e-7) if cell.dtype == "float64" else (1.3e-6, 1e-5)
    for name, value in got.items():
        np.testing.assert_allclose(value, want[f"param:{name}"], rtol=rtol, atol=atol, err_msg=name)
    base = prepared.want.outputs
    if variant is not None and any(not np.allclose(want[f"param:{n}"], base[f"param:{n}"]) for n in got):
        # where the difference shows in the parameters, the snippet shows it too
        assert any(not np.allclose(got[n], base[f"param:{n}"], rtol=rtol, atol=atol) for n in got)
