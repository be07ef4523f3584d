"""Two-process DistributedDataParallel smoke test on the CPU (gloo), launched through torchrun."""
import json
import subprocess
import sys
import textwrap

import torch

from painterly import checkpoint as ckpt

from test_training import _write_images

SCRIPT = textwrap.dedent("""
    import json, os, sys, threading, torch
    import torch.distributed as dist
    from painterly.encoders import VGG19Encoder
    from painterly.training import TrainConfig, Trainer
    root, steps = sys.argv[1], int(sys.argv[2])
    # threads Python does not know of (gloo's workers and I/O loop; Python's own, such as tqdm's
    # monitor, are stopped cleanly at exit)
    threads = lambda: len(os.listdir("/proc/self/task")) - len(threading.enumerate())
    torch.rand(256, 256) @ torch.rand(256, 256)  # start the OpenMP pool first (OMP_NUM_THREADS > 1): it stays
    threads_before = threads()
    torch.manual_seed(1234)
    enc = VGG19Encoder(width_divisor=16)
    cfg = TrainConfig(content_dir=root + "/content", style_dir=root + "/style", out_dir=root + "/run",
                      steps=steps, batch_size=2, crop=32, decoder_width=0.125, checkpoint_every=2,
                      sample_every=2, log_every=1, device="cpu", amp=False, channels_last=False, gan_weight=0.1)
    with Trainer(cfg, encoder=enc, resume=os.path.exists(root + "/run/checkpoint.safetensors")) as t:
        t.fit(progress=False)
        flat = torch.cat([p.detach().flatten() for p in t.decoder.parameters()])
        sums = [None] * dist.get_world_size()
        dist.all_gather_object(sums, (float(flat.sum()), float(flat.abs().sum())))
        if dist.get_rank() == 0:
            print("RESULT", json.dumps({"world": dist.get_world_size(), "sums": sums, "step": t.step}))
    # close() destroyed the group and joined gloo's threads: none is left to release a tensor
    # while the interpreter shuts down (the abort this run once ended with)
    assert not dist.is_initialized()
    assert threads() == threads_before, f"{threads() - threads_before} native thread(s) still running after close()"
""")


def _torchrun(tmp_path, steps):
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
         str(tmp_path), str(steps)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT"))
    return json.loads(line[len("RESULT "):])


def test_two_process_ddp_trains_in_sync_and_resumes(tmp_path):
    _write_images(tmp_path / "content", 4, 0, "content")
    _write_images(tmp_path / "style", 3, 1, "style")
    first = _torchrun(tmp_path, 2)
    assert first["world"] == 2 and first["step"] == 2
    (a, b) = first["sums"]
    assert a == b  # DDP keeps the replicas identical
    tensors, meta = ckpt.load(tmp_path / "run" / "checkpoint.safetensors")
    assert meta["world_size"] == 2 and "rng.data.1" in tensors
    # the two ranks drew different batches
    assert not torch.equal(tensors["rng.data.0"], tensors["rng.data.1"])
    second = _torchrun(tmp_path, 4)  # resumes both ranks from the checkpoint
    assert second["step"] == 4 and second["sums"][0] == second["sums"][1] and second["sums"][0] != a
