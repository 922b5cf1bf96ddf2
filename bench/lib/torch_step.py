#!/usr/bin/env python3
"""PyTorch rival for bench/train-step.ts: one training step of the reference model.

The model is the bench's reference model in NCHW: VGG16's conv base (3x3 same-padded ReLU
convs, blocks [64,2] [128,2] [256,3] [512,3] [512,3], each followed by a 2x2 max-pool of stride
2), blocks 1-4 frozen, block 5 trainable, then Flatten, Dense 256 ReLU, Dropout 0.5, Dense 1
sigmoid; binary cross-entropy, SGD lr 0.01. Weights are Glorot-uniform with zero biases (Keras's
defaults), so the first losses are near ln 2 like the other engines'.

The frozen prefix runs under torch.no_grad(), so autograd records nothing for it and computes
no input gradient for block 5's first conv, the same work the engine counts (stepMacs).

A long-lived process driven by JSON lines, one reply line per command:
  {"cmd":"init","height":60,"width":90,"batch":8,"threads":2,"device":"cpu","tf32":false}
      -> {"ok":true,"torch":"1.13.1","device":"cpu","device_name":...,"threads":2,"mkldnn":true,...}
  {"cmd":"step"}  -> {"seconds":0.51,"loss":0.69}
  {"cmd":"quit"}  -> {"ok":true}, then exit
Any failure replies {"error":"..."} (with "traceback") and the process keeps reading.
Only replies go to stdout; anything else goes to stderr.

"seconds" is wall time of forward, loss, backward and the optimizer step, including the loss
readback (loss.item()) as the engines' trainOnBatch includes theirs, and a
torch.cuda.synchronize() on cuda so queued kernels are counted. The JSON round trip is outside.
"""
import json
import os
import platform
import sys
import time
import traceback

BLOCKS = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
FROZEN_BLOCKS = 4  # Keras's first 15 layers: the input and blocks 1-4 (10 convs, 4 pools)

torch = None  # imported at init, so a missing torch is an {"error"} reply, not a crash
state = None
interop_set = False


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def conv_block(nn, cin, filters, convs):
    layers = []
    for _ in range(convs):
        layers += [nn.Conv2d(cin, filters, 3, padding=1), nn.ReLU(inplace=True)]
        cin = filters
    layers.append(nn.MaxPool2d(2, 2))
    return layers, cin


def glorot(nn, module):
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


def positive_int(msg, key, default):
    v = msg.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ValueError(f"'{key}' must be a positive integer, got {v!r}")
    return v


def init(msg):
    global torch, state
    state = None  # a failed init leaves no model, so a later step cannot time the previous size
    try:
        import torch as t
    except ImportError as e:
        raise RuntimeError(f"cannot import torch in {sys.executable} ({e}); run scripts/install-torch.sh") from e
    torch = t
    nn = torch.nn
    h = positive_int(msg, "height", 60)
    w = positive_int(msg, "width", 90)
    batch = positive_int(msg, "batch", 8)
    threads = positive_int(msg, "threads", 2)
    seed = msg.get("seed", 0)
    tf32 = bool(msg.get("tf32", False))
    device = str(msg.get("device", "cpu"))
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device '{device}' requested but torch.cuda.is_available() is False (torch {torch.__version__})")
    if not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got '{device}'")
    if (h >> 5) < 1 or (w >> 5) < 1:
        raise ValueError(f"input {h}x{w} is too small: five 2x2 pools need at least 32x32")

    global interop_set
    torch.set_num_threads(threads)
    if not interop_set:
        # Allowed once, before any parallel work: a second call aborts the process (a C++
        # c10::Error in Debian's 1.13, not a Python exception), so a later init keeps the first.
        torch.set_num_interop_threads(threads)
        interop_set = True
    # TF32 applies only on NVIDIA Ampere or newer; set both explicitly so the run says what it used.
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.manual_seed(seed)

    frozen, trainable, cin = [], [], 3
    for i, (filters, convs) in enumerate(BLOCKS):
        layers, cin = conv_block(nn, cin, filters, convs)
        (frozen if i < FROZEN_BLOCKS else trainable).extend(layers)
    h5, w5 = h >> 5, w >> 5  # floor at each pool, like Keras's 'valid' pooling
    # Flatten order is C,H,W here and H,W,C in Keras: the same count of multiply-adds.
    head = [nn.Flatten(), nn.Linear(512 * h5 * w5, 256), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(256, 1)]
    frozen = nn.Sequential(*frozen)
    trainable = nn.Sequential(*trainable, *head)
    glorot(nn, frozen)
    glorot(nn, trainable)
    for p in frozen.parameters():
        p.requires_grad_(False)
    dev = torch.device(device)
    frozen.to(dev).eval()  # no dropout or batch norm in it; eval only documents that it is frozen
    trainable.to(dev).train()  # Dropout active, as in trainOnBatch
    opt = torch.optim.SGD(trainable.parameters(), lr=0.01)
    x = torch.rand(batch, 3, h, w, device=dev)
    y = (torch.arange(batch, device=dev) % 2).float().unsqueeze(1)
    state = {"frozen": frozen, "trainable": trainable, "opt": opt, "x": x, "y": y, "cuda": dev.type == "cuda"}

    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_name()
    return {
        "ok": True,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(dev),
        "device_name": name,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if dev.type == "cuda" else None,
        "tf32": tf32,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "input": [batch, 3, h, w],
        "trainable_params": sum(p.numel() for p in trainable.parameters()),
        "frozen_params": sum(p.numel() for p in frozen.parameters()),
    }


def step():
    if state is None:
        raise RuntimeError("no model: send {\"cmd\":\"init\",...} first")
    s = state
    F = torch.nn.functional
    if s["cuda"]:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch.no_grad():
        features = s["frozen"](s["x"])
    logits = s["trainable"](features)
    # Sigmoid then cross-entropy, fused for stability: the same value and gradient as sigmoid + BCE.
    loss = F.binary_cross_entropy_with_logits(logits, s["y"])
    s["opt"].zero_grad(set_to_none=True)
    loss.backward()
    s["opt"].step()
    value = loss.item()
    if s["cuda"]:
        torch.cuda.synchronize()
    return {"seconds": time.perf_counter() - t0, "loss": value}


def main():
    while True:
        line = sys.stdin.readline()
        if not line:  # stdin closed: the driver is gone
            return
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
            if not isinstance(msg, dict):
                raise ValueError("a command must be a JSON object")
            cmd = msg.get("cmd")
            if cmd == "init":
                reply(init(msg))
            elif cmd == "step":
                reply(step())
            elif cmd == "quit":
                reply({"ok": True})
                return
            else:
                raise ValueError(f"unknown cmd {cmd!r} (init, step, quit)")
        except Exception as e:  # reply and keep serving: the driver decides whether to stop
            reply({"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()})


if __name__ == "__main__":
    main()
