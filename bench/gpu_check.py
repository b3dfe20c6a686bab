#!/usr/bin/env python3
"""The CUDA checks of issue 5 in one run, on a GPU machine with PyTorch (no network needed).

A GPU is lent to a session for minutes, so everything is prepared here and runs as one command:

1. Environment: nvidia-smi, PyTorch's view of the GPU, the seedling build's version.
2. Replay checks (per model: --tiny's trained-shape fixture if given, and a random-weight SD 1.5
   folder at --size): `seedling generate` on CUDA in f32 and in f16, then
   - `seedling replay --verify --device cuda`: the same CUDA run twice must be pixel-identical;
   - `seedling replay --verify --device cpu --dtype f32`: the CPU image of the same recipe, max
     pixel difference and PSNR against the CUDA one (f16 on CUDA against f32 on CPU too).
3. Speed at --dtype (f16) on the GPU, seedling and diffusers/PyTorch side by side on the same
   random weights: seedling bench's stages (text encoding, UNet step at batch 2 and 1, VAE
   decode) and seconds per image end to end, for an sd-turbo-size network (SD 2.1's UNet at
   512², 1 Euler step, no guidance) and an SD 1.5-size one (512², --sd15-steps Euler steps,
   guidance 7.5). PyTorch's image is `StableDiffusionPipeline(...)` with the Euler scheduler and
   output_type "np" (decode and conversion included, as seedling's end-to-end stage does).

Results go to --out as gpu-check.json (written after every section, so a run cut short keeps
what it finished) and gpu-check.txt (the readable summary). Exit status 1 if a CUDA replay was not
identical or a command failed.

On the GPU machine (see docs/BUILD.md, "The GPU check") it runs through scripts/gpu-check.sh, which
installs the diffusers wheel that scripts/gpu-check-prepare.sh put in carry/gpu-check and
passes the tiny-sd copy beside it:

    bash scripts/gpu-check.sh        # carrying dist/cuda/seedling.xz and carry/gpu-check

Rehearse it on a CPU machine with small sizes (same code paths, CPU on both sides):

    python3 bench/gpu_check.py --device cpu --dtype f32 --size 128 --sd15-steps 2 \\
        --seedling target/release/seedling --tiny ../shared/fixtures/tiny-sd --out /tmp/gc
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import compare_diffusers as cd  # noqa: E402

PROMPT = "a lighthouse at dawn"
SEED = "721"


class Check:
    def __init__(self, a):
        self.a = a
        self.results = {"device": a.device, "dtype": a.dtype, "size": a.size}
        self.lines = []
        self.failed = []
        os.makedirs(a.out, exist_ok=True)
        os.makedirs(a.work, exist_ok=True)

    def say(self, line=""):
        print(line, flush=True)
        self.lines.append(line)

    def save(self):
        with open(os.path.join(self.a.out, "gpu-check.json"), "w") as f:
            json.dump(self.results, f, indent=2)
        with open(os.path.join(self.a.out, "gpu-check.txt"), "w") as f:
            f.write("\n".join(self.lines) + "\n")

    def seedling(self, *args):
        """Runs seedling; returns (exit status, stdout, stderr) and logs a failure's stderr."""
        cmd = self.a.seedling.split() + [str(x) for x in args]
        start = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        took = time.perf_counter() - start
        print(f"$ {' '.join(cmd)}  [{took:.1f} s, exit {p.returncode}]", file=sys.stderr,
              flush=True)
        if p.returncode != 0:
            print(p.stderr[-2000:], file=sys.stderr, flush=True)
        return p.returncode, p.stdout, p.stderr


def environment(c):
    c.say("## environment")
    if shutil.which("nvidia-smi"):
        q = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                            "--format=csv,noheader"], capture_output=True, text=True)
        c.results["nvidia_smi"] = q.stdout.strip()
        c.say(f"nvidia-smi: {q.stdout.strip()}")
    import torch
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    c.results["torch"] = {"version": torch.__version__, "cuda": torch.version.cuda, "gpu": gpu}
    c.say(f"torch {torch.__version__} (CUDA {torch.version.cuda}), GPU: {gpu}")
    import diffusers
    c.results["diffusers"] = diffusers.__version__
    rc, out, _ = c.seedling("--version")
    c.results["seedling"] = out.strip()
    c.say(f"diffusers {diffusers.__version__}; {out.strip()}")
    if rc != 0:
        c.failed.append("seedling --version")
    c.save()


def folder(c, arch):
    path = os.path.join(c.a.work, f"random-{arch}")
    if not os.path.isdir(path):
        start = time.perf_counter()
        cd.build_folder(arch, path, c.a.tokenizer)
        print(f"built {path} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return path


DIFF = re.compile(r"max pixel difference (\d+), PSNR ([0-9.]+|inf) dB")


def compare_line(out):
    """{max_diff, psnr_db} from replay --verify's report (PSNR None for "identical": infinite),
    None when it printed neither."""
    if re.search(r"^identical", out, re.M):
        return {"max_diff": 0, "psnr_db": None}
    m = DIFF.search(out)
    if not m:
        return None
    return {"max_diff": int(m.group(1)), "psnr_db": float(m.group(2))}


def describe(cmp):
    if cmp is None:
        return "no report"
    if cmp["max_diff"] == 0:
        return "identical"
    return f"max difference {cmp['max_diff']}, PSNR {cmp['psnr_db']:.2f} dB"


def replays(c, name, model, size, steps):
    """generate on the device, replay there (identity) and on the CPU in f32 (PSNR)."""
    c.say(f"\n## replay: {name}, {size}x{size}, {steps} Euler steps, guidance 7.5, seed {SEED}")
    rows = {}
    for dtype in dict.fromkeys(("f32", c.a.dtype)):
        png = os.path.join(c.a.work, f"{name}-{dtype}.png")
        rc, _, _ = c.seedling("generate", PROMPT, "--model", model, "--seed", SEED,
                              "--sampler", "euler", "--steps", steps, "--cfg", "7.5",
                              "--width", size, "--height", size, "--dtype", dtype,
                              "--device", c.a.device, "-o", png, "--overwrite")
        if rc != 0:
            c.failed.append(f"generate {name} {dtype}")
            continue
        rc, out, _ = c.seedling("replay", png, "--verify", "--device", c.a.device)
        same = compare_line(out)
        identical = rc == 0 and same is not None and same["max_diff"] == 0
        if not identical:
            c.failed.append(f"{name} {dtype}: the {c.a.device} replay was not identical")
        # An unchanged CPU replay of a CUDA image reports the difference and exits 1 (exact
        # regeneration needs the same device): the report is what is wanted here.
        _, out, _ = c.seedling("replay", png, "--verify", "--device", "cpu", "--dtype", "f32")
        cpu = compare_line(out)
        rows[dtype] = {"replay_identical": identical, "vs_cpu_f32": cpu}
        c.say(f"{c.a.device} {dtype}: replayed twice identical: {identical}; "
              f"against CPU f32: {describe(cpu)}")
    c.results.setdefault("replay", {})[name] = rows
    c.save()


def torch_per_image(folder_path, size, steps, cfg, dtype, device, repeats):
    """diffusers' pipeline end to end (Euler, output_type "np"), min/median seconds."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(folder_path, dtype=dtype,
                                                   safety_checker=None,
                                                   requires_safety_checker=False).to(device)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    sync = cd.device_sync(device)

    def run():
        with torch.inference_mode():
            pipe(PROMPT, num_inference_steps=steps, guidance_scale=cfg, height=size, width=size,
                 output_type="np", generator=torch.Generator("cpu").manual_seed(0))

    stage = cd.time_stage(run, repeats, sync)
    del pipe
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return stage


def speed(c, label, arch, steps, cfg):
    import torch

    a = c.a
    path = folder(c, arch)
    c.say(f"\n## speed: {label} ({arch} random weights), {a.size}x{a.size}, {a.dtype}, "
          f"{steps} Euler steps, {'guidance ' + str(cfg) if cfg > 1 else 'no guidance'}")
    rc, out, _ = c.seedling("bench", "--model", path, "--device", a.device, "--dtype", a.dtype,
                            "--width", a.size, "--height", a.size, "--repeats", a.repeats,
                            "--steps", steps, "--cfg", cfg, "--json")
    ours = {}
    if rc == 0:
        ours = {s["name"]: s for s in json.loads(out)["stages"]}
    else:
        c.failed.append(f"bench {arch}")
    tdtype = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[a.dtype]
    theirs = cd.bench_torch(path, a.size, a.size, a.repeats, os.cpu_count(), a.device, tdtype)
    e2e = f"end to end ({steps} steps, {'guidance' if cfg > 1 else 'no guidance'})"
    theirs[e2e] = torch_per_image(path, a.size, steps, cfg, tdtype, a.device, a.repeats)
    c.say(f"{'stage':<40} {'torch s':>9} {'seedling s':>11} {'ratio':>6}")
    for name, t in theirs.items():
        s = ours.get(name)
        ratio = f"{s['median_s'] / t['median_s']:.2f}" if s else "-"
        mine = f"{s['median_s']:.4f}" if s else "-"
        c.say(f"{name:<40} {t['median_s']:>9.4f} {mine:>11} {ratio:>6}")
    c.results.setdefault("speed", {})[label] = {"arch": arch, "steps": steps, "cfg": cfg,
                                                "torch": theirs, "seedling": ours}
    c.save()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seedling", default=os.path.join(ROOT, "scripts", "run-cuda.sh"),
                   help="command that runs seedling (default: scripts/run-cuda.sh, which runs "
                   "dist/cuda/seedling with the CUDA libraries found)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="f16", choices=["f32", "f16", "bf16"],
                   help="precision of the speed runs (the replay checks run f32 and this)")
    p.add_argument("--size", type=int, default=512, help="image side of the SD 1.5 replay "
                   "check and the speed runs")
    p.add_argument("--sd15-steps", type=int, default=20)
    p.add_argument("--replay-steps", type=int, default=4)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--tiny", help="a small diffusers folder (tiny-sd) for a replay check at its "
                   "native size")
    p.add_argument("--tokenizer", help="CLIP tokenizer folder for the random-weight folders "
                   "(default: --tiny's tokenizer)")
    p.add_argument("--work", default="/tmp/seedling-gpu-check")
    p.add_argument("--out", required=True)
    p.add_argument("--skip", action="append", default=[],
                   choices=["replay", "replay-random", "speed-turbo", "speed-sd15"])
    a = p.parse_args()
    a.tokenizer = a.tokenizer or (os.path.join(a.tiny, "tokenizer") if a.tiny else None)
    if not a.tokenizer:
        p.error("give --tokenizer (or --tiny, whose tokenizer is used)")
    c = Check(a)
    environment(c)
    if "replay" not in a.skip:
        if a.tiny:
            replays(c, "tiny-sd", a.tiny, 64, a.replay_steps)
        if "replay-random" not in a.skip:
            replays(c, "sd15-random", folder(c, "sd15"), a.size, a.replay_steps)
    if "speed-turbo" not in a.skip:
        speed(c, "sd-turbo size", "sd21", 1, 0.0)
    if "speed-sd15" not in a.skip:
        speed(c, "SD 1.5 size", "sd15", a.sd15_steps, 7.5)
    c.results["failed"] = c.failed
    c.say("\nfailed: " + ("; ".join(c.failed) if c.failed else "nothing"))
    c.save()
    sys.exit(1 if c.failed else 0)


if __name__ == "__main__":
    main()
