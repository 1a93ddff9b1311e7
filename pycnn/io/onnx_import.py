def load_onnx(src):
    raise NotImplementedError
