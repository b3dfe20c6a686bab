#!/usr/bin/env python3
"""seedling vs diffusers on the same CPU, same architecture, same weights, measured in one run.

What it does:
1. Builds the networks of a full-size architecture (models/arch/<arch>.json, the same file
   `seedling bench --arch` reads) in diffusers/transformers with random weights (torch seed 0)
   and saves them as a diffusers folder (fp32 safetensors), unless the folder already exists.
2. Times diffusers/PyTorch on that folder (in a fresh Python process): text encoding, one UNet
   step at batch 2 and batch 1, VAE decode, each after one warm-up run, min/median over
   --repeats, under torch.inference_mode() with torch.set_num_threads(--threads), and the peak
   resident memory of each stage (Linux VmHWM, reset through /proc/self/clear_refs before it).
3. Runs `seedling bench --model <folder> --json` with RAYON_NUM_THREADS=--threads on the same
   folder, and prints both side by side with the ratio seedling / PyTorch (below 1 = faster).
4. Times the VAE decode once more on each side in a fresh process that loads only the VAE
   (`seedling bench --vae-only`): the row "vae decode (VAE alone)", whose peak memory is the
   decoder's own (weights, activations and the runtime), not the other networks' weights.
5. With --rounds N, does 2–4 N times, alternating which side goes first, and prints each round's
   table and, per stage, the ratios of the rounds and their median: the VM this was written on
   drifts by 10–25 % within minutes, which a single PyTorch-then-seedling pass folds into the
   ratio.

Needs: torch (CPU wheel is enough), diffusers, transformers, safetensors; a release build of
seedling (`cargo build --release`). Example:

    python3 bench/compare_diffusers.py --arch sd15 --width 512 --height 512 --threads 2

The tokenizer files are only there so the folder is a complete pipeline; they are copied from
--tokenizer (default: ../shared/fixtures/tiny-sd/tokenizer, a CLIP BPE tokenizer).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def status_bytes(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def peak_bytes():
    return status_bytes("VmHWM:")


def device_sync(device):
    """What waits for a device's queued work: torch.cuda.synchronize on a GPU, nothing on the
    CPU (its work is done when the call returns)."""
    import torch
    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


def time_stage(fn, repeats, sync=lambda: None):
    """One untimed run, then `repeats` timed ones; `sync` waits for queued device work
    (torch.cuda.synchronize on a GPU), as seedling's bench synchronizes after each run."""
    reset_peak()
    # What the process holds when the stage begins (loaded weights): peak − start is what the
    # stage adds, seedling's `start_rss_bytes`.
    start_rss = status_bytes("VmRSS:")
    fn()
    sync()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        runs.append(time.perf_counter() - start)
    return {"min_s": min(runs), "median_s": statistics.median(runs), "runs_s": runs,
            "peak_rss_bytes": peak_bytes(), "start_rss_bytes": start_rss}


def build_folder(arch, folder, tokenizer_dir):
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    with open(os.path.join(ROOT, "models", "arch", f"{arch}.json")) as f:
        cfg = json.load(f)
    torch.manual_seed(0)
    os.makedirs(folder + ".partial", exist_ok=True)
    tmp = folder + ".partial"
    UNet2DConditionModel(**cfg["unet"]).save_pretrained(os.path.join(tmp, "unet"))
    AutoencoderKL(**cfg["vae"]).save_pretrained(os.path.join(tmp, "vae"))
    CLIPTextModel(CLIPTextConfig(**cfg["text_encoder"])).save_pretrained(
        os.path.join(tmp, "text_encoder"))
    sdxl = "text_encoder_2" in cfg
    if sdxl:
        CLIPTextModelWithProjection(CLIPTextConfig(**cfg["text_encoder_2"])).save_pretrained(
            os.path.join(tmp, "text_encoder_2"))
    tokenizers = ["tokenizer", "tokenizer_2"] if sdxl else ["tokenizer"]
    for t in tokenizers:
        shutil.copytree(tokenizer_dir, os.path.join(tmp, t))
    os.makedirs(os.path.join(tmp, "scheduler"), exist_ok=True)
    with open(os.path.join(tmp, "scheduler", "scheduler_config.json"), "w") as f:
        json.dump(cfg["scheduler"], f, indent=2)
    index = {
        "_class_name": "StableDiffusionXLPipeline" if sdxl else "StableDiffusionPipeline",
        "_diffusers_version": "0.42.1",
        "scheduler": ["diffusers", cfg["scheduler"]["_class_name"]],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    if sdxl:
        index["text_encoder_2"] = ["transformers", "CLIPTextModelWithProjection"]
        index["tokenizer_2"] = ["transformers", "CLIPTokenizer"]
        index["force_zeros_for_empty_prompt"] = True
    else:
        index["safety_checker"] = [None, None]
        index["feature_extractor"] = [None, None]
        index["requires_safety_checker"] = False
    with open(os.path.join(tmp, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2)
    os.rename(tmp, folder)


def bench_torch(folder, width, height, repeats, threads, device="cpu", dtype=None):
    """seedling bench's stages in diffusers/transformers; `device` and `dtype` (a torch dtype,
    default f32) for the GPU check (bench/gpu_check.py)."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.set_num_threads(threads)
    dtype = dtype or torch.float32
    sync = device_sync(device)
    def load(cls, sub):
        return cls.from_pretrained(os.path.join(folder, sub)).to(device, dtype).eval()
    sdxl = os.path.isdir(os.path.join(folder, "text_encoder_2"))
    te = load(CLIPTextModel, "text_encoder")
    te2 = load(CLIPTextModelWithProjection, "text_encoder_2") if sdxl else None
    unet = load(UNet2DConditionModel, "unet")
    vae = load(AutoencoderKL, "vae")
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    ids = torch.full((1, 77), 49407, dtype=torch.long)
    ids[0, 0] = 49406
    ids[0, 1:9] = torch.arange(321, 329)
    ids = ids.to(device)
    def zeros(*shape):
        return torch.zeros(*shape, device=device, dtype=dtype)
    stages = {}
    with torch.inference_mode():
        def encode():
            if not sdxl:
                return te(ids)[0], None
            o1 = te(ids, output_hidden_states=True)
            o2 = te2(ids, output_hidden_states=True)
            return torch.cat([o1.hidden_states[-2], o2.hidden_states[-2]], dim=-1), o2.text_embeds

        stages["text encoding (1 prompt)"] = time_stage(encode, repeats, sync)
        context, pooled = encode()
        for batch in (2, 1):
            lat = zeros(batch, unet.config.in_channels, height // factor, width // factor)
            ctx = context.repeat(batch, 1, 1)
            added = None
            if sdxl:
                added = {"text_embeds": pooled.repeat(batch, 1),
                         "time_ids": torch.tensor([[height, width, 0, 0, height, width]] * batch,
                                                  dtype=dtype, device=device)}
            t = torch.tensor(500, device=device)
            what = "with guidance" if batch == 2 else "no guidance"
            stages[f"unet step, batch {batch} ({what})"] = time_stage(
                lambda: unet(lat, t, encoder_hidden_states=ctx, added_cond_kwargs=added), repeats,
                sync)
        lat = zeros(1, vae.config.latent_channels, height // factor, width // factor)
        stages["vae decode"] = time_stage(lambda: vae.decode(lat), repeats, sync)
    return stages


def bench_torch_vae_alone(folder, width, height, repeats, threads):
    """The VAE decode in a process that loaded only the VAE (seedling's `bench --vae-only`)."""
    import torch
    from diffusers import AutoencoderKL

    torch.set_num_threads(threads)
    vae = AutoencoderKL.from_pretrained(os.path.join(folder, "vae")).eval()
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    with torch.inference_mode():
        lat = torch.zeros(1, vae.config.latent_channels, height // factor, width // factor)
        return time_stage(lambda: vae.decode(lat), repeats)


VAE_ALONE = "vae decode (VAE alone)"


def run_torch(a, folder):
    """PyTorch's stages, then its VAE alone, each in a fresh process (so a later round's peak
    memory does not start from an earlier round's)."""
    def child(flag):
        out = subprocess.run(
            [sys.executable, os.path.abspath(__file__), flag, "--folder", folder,
             "--width", str(a.width), "--height", str(a.height), "--repeats", str(a.repeats),
             "--threads", str(a.threads)],
            check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])
    stages = child("--torch-half")
    stages[VAE_ALONE] = child("--torch-vae-alone")
    return stages


def run_seedling(a, folder):
    """`seedling bench` on the folder, then `seedling bench --vae-only`."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
    size = ["--width", str(a.width), "--height", str(a.height), "--repeats", str(a.repeats)]
    out = subprocess.run([a.seedling, "bench", "--model", folder, "--json", *size, "--steps", "1"],
                         env=env, check=True, capture_output=True, text=True).stdout
    stages = {s["name"]: s for s in json.loads(out)["stages"]}
    out = subprocess.run([a.seedling, "bench", "--model", folder, "--json", *size, "--vae-only"],
                         env=env, check=True, capture_output=True, text=True).stdout
    stages[VAE_ALONE] = json.loads(out)["stages"][0]
    return stages


def print_round(title, torch_r, ours):
    print(f"\n{title}")
    print(f"{'stage':<36} {'torch s':>9} {'seedling s':>11} {'ratio':>6} "
          f"{'torch RSS':>10} {'seedling RSS':>13} {'ratio':>6} "
          f"{'torch added':>12} {'seedling added':>15} {'ratio':>6}")
    for name in torch_r or ours:
        t, s = torch_r.get(name), ours.get(name)
        def sec(x): return f"{x['median_s']:.3f}" if x else "-"
        def gb(x): return f"{x['peak_rss_bytes'] / 1e9:.2f} GB" if x and x["peak_rss_bytes"] else "-"
        ratio = f"{s['median_s'] / t['median_s']:.2f}" if t and s else "-"
        mem = (f"{s['peak_rss_bytes'] / t['peak_rss_bytes']:.2f}"
               if t and s and t["peak_rss_bytes"] and s["peak_rss_bytes"] else "-")
        def added(x):
            if not x or not x.get("peak_rss_bytes") or x.get("start_rss_bytes") is None:
                return None
            return x["peak_rss_bytes"] - x["start_rss_bytes"]
        ta, sa = added(t), added(s)
        def gb_added(v): return f"{v / 1e9:.2f} GB" if v is not None else "-"
        added_ratio = f"{sa / ta:.2f}" if ta and sa is not None else "-"
        print(f"{name:<36} {sec(t):>9} {sec(s):>11} {ratio:>6} {gb(t):>10} {gb(s):>13} {mem:>6} "
              f"{gb_added(ta):>12} {gb_added(sa):>15} {added_ratio:>6}")


def print_paired(rounds):
    """Per stage, each round's ratio of medians and their median: a slow drift of the machine's
    speed moves both sides of a round alike, and the rounds alternate which side goes first."""
    print(f"\nratio seedling / PyTorch per round (median s over median s), then their median")
    for name in rounds[0]["torch"]:
        ratios = [r["seedling"][name]["median_s"] / r["torch"][name]["median_s"]
                  for r in rounds if name in r["seedling"]]
        each = " ".join(f"{x:.2f}" for x in ratios)
        print(f"{name:<36} {each:>24}   median {statistics.median(ratios):.2f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arch", default="sd15", choices=["sd15", "sd21", "sdxl"])
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rounds", type=int, default=1,
                   help="run both sides this many times, alternating which goes first, and "
                   "report each round's ratios and their median")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--seedling", default=os.path.join(ROOT, "target", "release", "seedling"))
    p.add_argument("--folder", help="where the random-weight model goes "
                   "(default: /tmp/seedling-bench-<arch>)")
    p.add_argument("--tokenizer", default=os.path.join(ROOT, "..", "shared", "fixtures",
                                                       "tiny-sd", "tokenizer"))
    p.add_argument("--only", choices=["torch", "seedling"], help="run one side only")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--torch-half", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--torch-vae-alone", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.torch_half:
        # Run in a fresh process by the main one, once per round.
        print(json.dumps(bench_torch(a.folder, a.width, a.height, a.repeats, a.threads)))
        return
    if a.torch_vae_alone:
        # Run in a fresh process by the main one: its peak memory is the VAE's alone.
        print(json.dumps(bench_torch_vae_alone(a.folder, a.width, a.height, a.repeats, a.threads)))
        return
    if a.rounds < 1:
        p.error("--rounds must be at least 1")
    folder = a.folder or f"/tmp/seedling-bench-{a.arch}"
    if not os.path.isdir(folder):
        print(f"building {a.arch} with random weights in {folder} …", file=sys.stderr)
        build_folder(a.arch, folder, a.tokenizer)

    sides = [s for s in ("torch", "seedling") if a.only in (None, s)]
    rounds = []
    for i in range(a.rounds):
        results = {}
        for side in sides if i % 2 == 0 else sides[::-1]:
            print(f"round {i + 1} of {a.rounds}: timing {side} …", file=sys.stderr)
            results[side] = run_torch(a, folder) if side == "torch" else run_seedling(a, folder)
        rounds.append(results)
        print_round(f"{a.arch} {a.width}x{a.height}, f32, {a.threads} threads, median of "
                    f"{a.repeats}, round {i + 1} of {a.rounds}",
                    results.get("torch", {}), results.get("seedling", {}))
    if a.rounds > 1 and len(sides) == 2:
        print_paired(rounds)
    if a.json:
        # "torch" and "seedling" hold the first round (the format of a one-round run).
        out = {"arch": a.arch, "width": a.width, "height": a.height, "threads": a.threads,
               "repeats": a.repeats, **rounds[0], "rounds": rounds}
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
