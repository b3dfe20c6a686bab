"""Independent reference for seedling's A1111 "parameters" text (src/metadata/a1111/write.rs tests).

Written from the behaviour of AUTOMATIC1111's create_infotext (modules/processing.py) and
quote() (modules/infotext_utils.py), using CPython's own json.dumps(ensure_ascii=False),
repr(float) and str.strip(), so the Rust port's quoting, number printing and stripping are
checked against the real Python functions, not against themselves.

It is not A1111's code (A1111 cannot run here), and it encodes where seedling departs from
create_infotext on purpose, so that readers regenerate seedling's settings:
* "Negative prompt:" is written even when empty (ComfyUI's importA1111 needs "\nNegative prompt:"
  before the settings line; with an empty prompt the stripped text gets its leading "\n" back);
* "Schedule type" is the schedule seedling ran in A1111's labels (modules/sd_schedulers.py):
  "Karras", else "Uniform" for the samplers A1111 runs on k-diffusion sigmas (Euler, Euler a,
  DPM++ 2M, LCM), else "Automatic" (DDIM, PLMS, UniPC ignore it). Never "Automatic" for
  DPM++ 2M, which A1111 1.9+ reads as Karras;
* UniPC adds "UniPC variant: bh2" (A1111's uni_pc_variant option, infotext "UniPC variant").

Usage: python3 a1111_infotext.py   (prints one JSON object: case name -> expected text)
"""
import json

VERSION = "seedling 0.1.0"  # the Rust tests substitute provenance::TOOL
UNET = "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa"
SAMPLERS = {"ddim": "DDIM", "euler": "Euler", "euler_a": "Euler a", "dpmpp_2m": "DPM++ 2M",
            "unipc": "UniPC", "pndm": "PLMS", "lcm": "LCM"}
# The samplers A1111 runs as KDiffusionSampler (sd_samplers_kdiffusion.py, sd_samplers_lcm.py),
# whose sigmas "Schedule type" chooses.
K_DIFFUSION = {"euler", "euler_a", "dpmpp_2m", "lcm"}
RNGS = {"torch-cpu": "CPU", "chacha": "seedling-chacha-v1"}


def quote(text):
    s = str(text)
    if "," not in s and "\n" not in s and ":" not in s:
        return s
    return json.dumps(text, ensure_ascii=False)


def number(x):
    # The A1111 UI sends whole numbers as ints (CFG 7 -> "7"), others as floats.
    return int(x) if float(x).is_integer() else float(x)


def schedule_type(r):
    if r["schedule"] == "karras":
        return "Karras"
    return "Uniform" if r["sampler"] in K_DIFFUSION else "Automatic"


def infotext(r):
    params = {
        "Steps": r["steps"],
        "Sampler": SAMPLERS[r["sampler"]],
        "Schedule type": schedule_type(r),
        "CFG scale": number(r["cfg"]),
        "Seed": r["seed"],
        "Size": f'{r["width"]}x{r["height"]}',
        "Model hash": r["hash"][:10] if r["hash"] else None,
        "Model": r["model"],
        "RNG": RNGS[r["rng"]],
        "Eta DDIM": number(r["eta"]) if r["sampler"] == "ddim" and r["eta"] != 0 else None,
        "UniPC variant": "bh2" if r["sampler"] == "unipc" else None,
        "Version": VERSION,
    }
    line = ", ".join(f"{k}: {quote(v)}" for k, v in params.items() if v is not None)
    text = f'{r["prompt"]}\nNegative prompt: {r["negative"]}\n{line}'.strip()
    return "\n" + text if text.startswith("Negative prompt:") else text


BASE = dict(prompt="a lighthouse at dawn", negative="", seed=42, rng="torch-cpu", width=512,
            height=512, sampler="euler_a", schedule="default", steps=20, cfg=7.5, eta=0.0,
            hash=UNET, model="sd15")
CASES = {
    "plain_recipe": {},
    "negative_prompt_whole_cfg_and_chacha": dict(
        negative="blurry, lowres", cfg=7.0, rng="chacha", sampler="euler",
        seed=18446744073709551615, width=768),
    "ddim_with_eta_and_quoted_model_name": dict(
        sampler="ddim", eta=0.3, cfg=12.25, steps=50, hash=None, model="my model: v2, final"),
    "ddim_tiny_eta": dict(sampler="ddim", eta=0.00001),
    "multiline_and_unicode_prompts": dict(
        prompt="  \n灯台 at dawn 🌅, \"golden\" hour\nsecond line", negative="naïve: ugly\nmore"),
    "empty_prompts": dict(prompt=""),
    "empty_prompt_with_negative": dict(prompt="", negative="blurry"),
    "dpmpp_2m_default_schedule": dict(sampler="dpmpp_2m"),
    "dpmpp_2m_karras": dict(sampler="dpmpp_2m", schedule="karras"),
    "unipc": dict(sampler="unipc"),
    "plms": dict(sampler="pndm"),
    "lcm": dict(sampler="lcm", steps=4, cfg=1.0),
}

if __name__ == "__main__":
    out = {name: infotext({**BASE, **over}) for name, over in CASES.items()}
    out["quote"] = [quote(s) for s in ["plain", "a\"b\\c", "a, b",
                                       "x:\"q\"\\\n\r\t\b\f\x01\x1f\x7fé🌅"]]
    out["numbers"] = [str(number(x)) for x in [7.0, 0.0, 7.5, 0.1, 0.00001, 0.0001, 1.5e-7,
                                               12.345678901234567]]
    out["repr"] = [repr(x) for x in [1e16, 123.0, -0.5]]
    print(json.dumps(out, ensure_ascii=False, indent=1))
