"""Independent reference for seedling's A1111 "parameters" text (src/metadata/a1111.rs tests).

Written from the behaviour of AUTOMATIC1111's create_infotext (modules/processing.py) and
quote() (modules/infotext_utils.py), using CPython's own json.dumps(ensure_ascii=False),
repr(float) and str.strip(), so the Rust port's quoting, number printing and stripping are
checked against the real Python functions, not against themselves.

Usage: python3 a1111_infotext.py   (prints one JSON object: case name -> expected text)
"""
import json

VERSION = "seedling 0.1.0"  # the Rust tests substitute provenance::TOOL
UNET = "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa"
SAMPLERS = {"ddim": "DDIM", "euler": "Euler", "euler_a": "Euler a"}
RNGS = {"torch-cpu": "CPU", "chacha": "seedling-chacha-v1"}


def quote(text):
    s = str(text)
    if "," not in s and "\n" not in s and ":" not in s:
        return s
    return json.dumps(text, ensure_ascii=False)


def number(x):
    # The A1111 UI sends whole numbers as ints (CFG 7 -> "7"), others as floats.
    return int(x) if float(x).is_integer() else float(x)


def infotext(r):
    params = {
        "Steps": r["steps"],
        "Sampler": SAMPLERS[r["sampler"]],
        "Schedule type": "Automatic",
        "CFG scale": number(r["cfg"]),
        "Seed": r["seed"],
        "Size": f'{r["width"]}x{r["height"]}',
        "Model hash": r["hash"][:10] if r["hash"] else None,
        "Model": r["model"],
        "RNG": RNGS[r["rng"]],
        "Eta DDIM": number(r["eta"]) if r["sampler"] == "ddim" and r["eta"] != 0 else None,
        "Version": VERSION,
    }
    line = ", ".join(f"{k}: {quote(v)}" for k, v in params.items() if v is not None)
    neg = f'\nNegative prompt: {r["negative"]}' if r["negative"] else ""
    return f'{r["prompt"]}{neg}\n{line}'.strip()


BASE = dict(prompt="a lighthouse at dawn", negative="", seed=42, rng="torch-cpu", width=512,
            height=512, sampler="euler_a", steps=20, cfg=7.5, eta=0.0, hash=UNET, model="sd15")
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
}

if __name__ == "__main__":
    out = {name: infotext({**BASE, **over}) for name, over in CASES.items()}
    out["quote"] = [quote(s) for s in ["plain", "a\"b\\c", "a, b",
                                       "x:\"q\"\\\n\r\t\b\f\x01\x1f\x7fé🌅"]]
    out["numbers"] = [str(number(x)) for x in [7.0, 0.0, 7.5, 0.1, 0.00001, 0.0001, 1.5e-7,
                                               12.345678901234567]]
    out["repr"] = [repr(x) for x in [1e16, 123.0, -0.5]]
    print(json.dumps(out, ensure_ascii=False, indent=1))
