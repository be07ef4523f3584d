"""Stylize a photo with the exported ONNX model, using onnxruntime alone (no painterly)."""
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image

folder, photo, style, out = sys.argv[1:5]
alpha = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0


def load(path, side):  # RGB [0, 1] float32, (1, 3, H, W), longest side at most `side`
    img = Image.open(path).convert("RGB")
    img.thumbnail((side, side), Image.LANCZOS)
    return np.asarray(img, np.float32).transpose(2, 0, 1)[None] / 255.0


encoder = ort.InferenceSession(f"{folder}/style_encoder.onnx", providers=["CPUExecutionProvider"])
stylizer = ort.InferenceSession(f"{folder}/stylizer.onnx", providers=["CPUExecutionProvider"])
content = load(photo, 512)
if min(content.shape[2:]) < 17:  # model.json's min_side: the graph mirrors a 16 px margin
    sys.exit(f"{photo}: too small; both sides must be at least 17 px")
stats = encoder.run(None, {"style": load(style, 512)})[0]  # (1, K): cache it per style
image = stylizer.run(None, {"content": content, "statistics": stats, "alpha": np.array([alpha], np.float32)})[0]
Image.fromarray((image[0].transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)).save(out)
