"""Golden cases for seedling's linear port of A1111's settings-line scan
(src/metadata/a1111/read.rs, `find_params`).

Each case is a random line over the characters that matter to A1111's `re_param` (key
characters, spaces, tabs, colons, commas, quotes, backslashes, a non-ASCII letter and an
ASCII separator Python counts as whitespace), and what A1111 makes of it:
`re_param.findall(line)` from modules/infotext_utils.py, each value passed through A1111's
`unquote` when it is quoted, exactly as `parse_generation_parameters` does. CPython's own `re`
and `json` compute the expectations, so the Rust port is checked against them, not against
itself.

Usage: python3 re_param_cases.py > re_param_cases.json   (deterministic: seeded)
"""
import json
import random
import re

# modules/infotext_utils.py
re_param_code = r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)'
re_param = re.compile(re_param_code)


def unquote(text):
    if len(text) == 0 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        return json.loads(text)
    except Exception:
        return text


ALPHABET = ['a', 'b', 'Z', '1', '_', ' ', ' ', ':', ':', ',', ',', '"', '"', '\\', '-', '/',
            '\t', '\u00e9', '\u001c', 'x']

# Pieces of settings lines, so that half the lines look like real ones with damage in them.
TOKENS = ['Steps', 'Seed', 'Model hash', 'a-b/c', 'x', ': ', ':', ', ', ',', ' ', '"', '\\"',
          '\\', '"v, w"', '12', 'été', '\t', '']

rng = random.Random(22)
cases = []
for i in range(600):
    if i % 2 == 0:
        n = rng.randint(0, 40)
        line = ''.join(rng.choice(ALPHABET) for _ in range(n))
    else:
        n = rng.randint(0, 16)
        line = ''.join(rng.choice(TOKENS) for _ in range(n))
    found = [[k, unquote(v) if v and v[0] == '"' and v[-1] == '"' else v]
             for k, v in re_param.findall(line)]
    cases.append({"line": line, "params": found})
print(json.dumps(cases, ensure_ascii=False, indent=0))
