"""MindSpore 2.10 (CPU, PyNative): after `ms.grad` raises inside the forward twice, integer
indexing of any Tensor raises TypeError for the rest of the process; MindSpore's own executor
reset (`_pynative_executor.clear_res()`, which the suite's MindSpore worker calls after every
failed call: conformance/frameworks/mindspore/tensors.py, drain) restores it.

Found by a fresh-clone CI run: `peer-mindspore-ut-ops-clipbyglobalnorm[mindspore.ops.clip_by_global_norm-float32-cpu]`
(a bare Tensor, which clip_by_global_norm indexes) was `error` in a pytest-xdist worker that had
run two float64 training cells (CrossEntropyLoss has no float64 CPU kernel) and `match` in a
worker that had not.

    .tox/mindspore/bin/python docs/matrix_evidence/ms_grad_executor_state.py

prints (measured 2026-12-02, MindSpore 2.10.0):
    failures 1: x[0] ok
    failures 2: x[0] raises TypeError: Only support integers, slices(`:`), ellipsis(`...`), None, bool, tensor, int, list and tuple as index, but got 0 with type <class 'int'>
    failures 2, then clear_res(): x[0] ok
"""

import subprocess
import sys

CHILD = r"""
import sys
import numpy as np
import mindspore as ms
from mindspore import nn
from mindspore.common.api import _pynative_executor

ms.set_context(mode=ms.PYNATIVE_MODE)
ms.set_device("CPU")
keep = []
for _ in range(int(sys.argv[1])):
    net, loss = nn.Dense(3, 2, dtype=ms.float64), nn.CrossEntropyLoss()

    def forward(a, b):
        return loss(net(a), b)

    keep.append((forward, net, loss))
    try:
        ms.grad(forward, grad_position=None, weights=net.trainable_params())(
            ms.Tensor(np.ones((2, 3)), ms.float64), ms.Tensor(np.array([0, 1]), ms.int32))
    except TypeError:
        pass  # For 'CrossEntropyLoss', the 'logits' should be one of [float16, float32]
if sys.argv[2] == "reset":
    _pynative_executor.clear_res()
x = ms.Tensor(np.arange(4, dtype=np.float32))
try:
    x[0]
    print("ok")
except TypeError as e:
    print("raises TypeError: " + str(e).splitlines()[0])
"""


def main():
    for n, reset in ((1, "no"), (2, "no"), (2, "reset")):
        out = subprocess.run([sys.executable, "-c", CHILD, str(n), reset], capture_output=True, text=True)
        label = f"failures {n}" + (", then clear_res()" if reset == "reset" else "")
        print(f"{label}: x[0] {out.stdout.strip()}")


if __name__ == "__main__":
    main()
