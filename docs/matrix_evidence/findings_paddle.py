"""Hand checks (Paddle 3.3.1, CPU) behind the Paddle declarations of the property-test findings
(docs/matrix.md). Run in Paddle's interpreter: python docs/matrix_evidence/findings_paddle.py"""
import numpy as np
import paddle

print("paddle", paddle.__version__)
for name, clip in (("ClipGradByGlobalNorm", paddle.nn.ClipGradByGlobalNorm(1.0)),
                   ("ClipGradByNorm", paddle.nn.ClipGradByNorm(1.0))):
    p = paddle.create_parameter([], "float32")
    g = paddle.to_tensor(np.array(3.0, np.float32))
    (out,) = clip([(p, g)])
    print(f"{name}([(0-d param, 0-d grad 3.0)]) -> shape {out[1].shape}, value {out[1].numpy().tolist()}")
