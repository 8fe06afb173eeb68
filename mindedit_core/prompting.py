"""The refinement prompt (versioned), its chat messages, and a forgiving parser for the answer.

The MLLM is asked to turn a vague editing instruction into two Stable Diffusion prompts:

- ``optimized_prompt``: 5-10 short English phrases describing the edited image (what is added,
  removed or transformed, with pose, position, colour, size, material, expression, clothing and
  environment), bound to the source image's light, layout and materials;
- ``negative_prompt``: 3-6 terms for what must disappear or must not appear, plus 3-6 artifact terms.

The same `PROMPT_VERSION` is used to build training data (``training/refine_data.py`` sends
`SYSTEM_PROMPT` + `refinement_request_text` to an OpenAI-style endpoint), as the supervised target
(`format_refinement`) and at inference (`build_messages`), so a fine-tuned model sees at inference
exactly the prompt it was trained on. Change the wording only together with a new `PROMPT_VERSION`.

`parse_refinement` never raises: it accepts the answer shapes real models produce (quotes, newlines,
markdown, JSON, the paper's ``<optimized_prompt:"..." negative_prompt:"...">`` form, a missing negative,
chatter around the answer) and, when nothing parses, falls back to the raw instruction with a
visible ``warning`` in its result, so a prompt is never silently empty.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

PROMPT_VERSION = "mindedit-refine-v1"

# Colour of the outline drawn around the edit region when a mask is shown to the MLLM
# (see `mindedit_core.images.outline_mask`). Named here because the prompt text mentions it.
MASK_OUTLINE_COLOR_NAME = "magenta"

SYSTEM_PROMPT = """\
You rewrite short, vague image-editing requests as precise prompts for a Stable Diffusion image editor.
You see the image to edit and the user's request.

Rules:
1. Intent: combine the request with what the image shows to work out what the user wants. State the \
concrete change: what is added, removed or transformed, and how it looks afterwards (pose, position, \
colour, size, material, facial expression, clothing, environment), with the edited area blending into \
its surroundings.
2. Grounding: tie the description to this image: its light direction, layout, surfaces and materials.
3. Brevity: key nouns and verbs only; no filler words such as "very" or "beautifully".
4. Stay on task: add nothing the user did not ask for; check every phrase against the image.

Answer with exactly these two lines and nothing else:
optimized_prompt: "<5-10 short English phrases, comma-separated, describing the edited image>"
negative_prompt: "<3-6 terms for what must disappear or must not appear, then 3-6 artifact terms \
such as malformed hands, mismatched shadows, blurry>"

Example. Image: a man standing with both hands in his pockets. Request: "make him wave".
optimized_prompt: "man waving, right arm raised, open palm facing viewer, wrist bent, \
same jacket and pose, soft daylight from left"
negative_prompt: "hands in pockets, lowered arms, extra limbs, deformed fingers, mismatched shadows, blurry"\
"""


def refinement_request_text(instruction: str, with_mask: bool = False) -> str:
    """The user turn's text (the image goes before it). Shared by training data construction and inference."""
    region = (
        f"The area to edit is outlined in {MASK_OUTLINE_COLOR_NAME} in the image; change only that area "
        "and keep the rest as it is.\n"
        if with_mask
        else ""
    )
    return (
        f'{region}Editing request: "{instruction.strip()}"\nWrite the optimized_prompt and negative_prompt.'
    )


def build_messages(instruction: str, *, with_mask: bool = False) -> list[dict]:
    """Chat messages for a LLaVA-OneVision style processor: system text, then the user turn with the
    image placeholder first (the chat template always renders images before text)."""
    return [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {
            "role": "user",
            "content": [
                {"type": "image"},
                {"type": "text", "text": refinement_request_text(instruction, with_mask)},
            ],
        },
    ]


def format_refinement(positive: str, negative: str) -> str:
    """The canonical answer text: the supervised target in training, and what `parse_refinement` reads best."""
    return f'optimized_prompt: "{_flatten(positive)}"\nnegative_prompt: "{_flatten(negative)}"'


@dataclass
class RefinedPrompt:
    """A parsed answer. ``parsed`` is False when the positive prompt fell back to the instruction;
    ``warning`` says what went wrong (also set when only the negative prompt is missing)."""

    positive: str
    negative: str
    raw: str
    parsed: bool
    warning: str | None = None


# Last resort when both the answer and the instruction are empty.
_EMPTY_FALLBACK = "a photo"

_POS_NAMES = r"optimi[sz]ed[ _\-]?prompts?|positive[ _\-]?prompts?|refined[ _\-]?prompts?|prompt"
_NEG_NAMES = r"negative[ _\-]?prompts?|negative"
# A key: the name (at a word start), optional markdown/quote decoration, then ':' or '='.
# Decoration *before* a key stays at the end of the previous section and is stripped there.
_KEY_RE = re.compile(
    r"(?<![A-Za-z0-9])(?P<name>" + _NEG_NAMES + "|" + _POS_NAMES + r")"
    r"(?:\s*\([^()\n]{0,40}\))?[\s\*_`\"'\]\)]*[:=]",
    re.IGNORECASE,
)
_KEY_DECORATION = " \t\r\n*_`#>\"'<[(-"
_FENCE_RE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.DOTALL)
_QUOTE_PAIRS = {'"': '"', "'": "'", "“": "”", "‘": "’", "`": "`", "«": "»"}


def parse_refinement(answer: str, fallback_instruction: str) -> RefinedPrompt:
    """Read ``optimized_prompt`` / ``negative_prompt`` from a model answer. Never raises.

    Falls back (``parsed=False``, ``warning`` set) to ``fallback_instruction`` as the positive prompt
    when no usable positive prompt is found.
    """
    raw = answer if isinstance(answer, str) else ("" if answer is None else str(answer))
    try:
        found = _parse_json(raw) or _parse_keys(raw)
    except Exception as exc:  # a parser bug must never break an edit: fall back visibly
        found = None
        reason = f"the parser failed ({type(exc).__name__}: {exc})"
    else:
        reason = "no optimized_prompt was found in the MLLM answer"
    positive, negative = found if found else ("", "")
    if positive and _echoes_template(positive):
        positive, negative = "", ""
        reason = "the MLLM repeated the answer template instead of filling it in"
    if positive:
        warning = None if negative else "the MLLM answer has no negative_prompt; using an empty one"
        return RefinedPrompt(positive=positive, negative=negative, raw=raw, parsed=True, warning=warning)
    fallback = _flatten(fallback_instruction or "")
    used = fallback or _EMPTY_FALLBACK
    what = "the raw instruction" if fallback else f"{_EMPTY_FALLBACK!r} (the instruction was empty too)"
    snippet = _flatten(raw)[:80]
    warning = f"Prompt refinement fell back to {what}: {reason} (answer starts: {snippet!r})."
    return RefinedPrompt(positive=used, negative=negative, raw=raw, parsed=False, warning=warning)


def _echoes_template(value: str) -> bool:
    """True when a value is the prompt's own placeholder (small base models sometimes copy it)."""
    lowered = value.lower()
    return "short english phrases" in lowered or "comma-separated, describing" in lowered


def _parse_json(text: str) -> tuple[str, str] | None:
    """A JSON object anywhere in the answer (possibly inside a ``` fence)."""
    candidates = [m.group(1) for m in _FENCE_RE.finditer(text)] + [text]
    for candidate in candidates:
        start, end = candidate.find("{"), candidate.rfind("}")
        if start < 0 or end <= start:
            continue
        try:
            obj = json.loads(candidate[start : end + 1])
        except (ValueError, RecursionError):
            continue
        if not isinstance(obj, dict):
            continue
        pos = neg = ""
        for key, value in obj.items():
            name = re.sub(r"[\s_\-]", "", str(key).lower())
            if name.startswith("negative"):
                neg = _clean_value(value)
            elif name.rstrip("s") in (
                "optimizedprompt",
                "optimisedprompt",
                "positiveprompt",
                "refinedprompt",
                "prompt",
            ):
                pos = _clean_value(value)
        if pos:
            return pos, neg
    return None


def _parse_keys(text: str) -> tuple[str, str] | None:
    """``key: value`` sections in any decoration; a value runs until the next key."""
    matches = list(_KEY_RE.finditer(text))
    pos = neg = ""
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        value = _section_value(text[match.end() : end], last=index + 1 == len(matches))
        is_negative = match.group("name").lower().startswith("negative")
        if is_negative and not neg:
            neg = value
        elif not is_negative and not pos:
            pos = value
    return (pos, neg) if (pos or neg) else None


def _section_value(section: str, *, last: bool) -> str:
    """The value text of one key: a quoted string if it starts with a quote, else its lines
    (the last section stops at the first blank line, where chatter usually starts)."""
    head, newline, tail = section.rpartition("\n")
    if newline and not tail.strip(_KEY_DECORATION):
        section = head  # the next key's line prefix, e.g. "### " or "**"
    body = re.sub(r"[\s*_#>]*$", "", section).strip().strip("*_").strip()
    if body[:1] == "[" and "]" in body:
        try:
            listed = json.loads(body[: body.rindex("]") + 1])
            if isinstance(listed, list):
                return _clean_value(listed)
        except ValueError:
            pass
    if body[:1] in _QUOTE_PAIRS:
        # A closing quote is one not followed by a letter or digit: "man's hat" keeps its apostrophe.
        # Models also write the phrases as a list of quoted strings ("a", "b", "c"): keep them all.
        closing = re.compile(re.escape(_QUOTE_PAIRS[body[0]]) + r"(?![^\W_])")
        items: list[str] = []
        start = 0
        while (end := closing.search(body, start + 1)) is not None:
            items.append(body[start + 1 : end.start()])
            separator = re.match(r"\s*,\s*", body[end.end() :])
            start = end.end() + (separator.end() if separator else 0)
            if not separator or body[start : start + 1] != body[0]:
                break
        if items:
            return _clean_value(items)
    if last:
        body = re.split(r"\n\s*\n", body, maxsplit=1)[0]
    lines = [re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", line) for line in body.splitlines()]
    return _clean_value(", ".join(line.strip() for line in lines if line.strip()))


def _clean_value(value) -> str:
    if isinstance(value, (list, tuple)):
        value = ", ".join(_clean_value(v) for v in value)
    text = _flatten(str(value) if value is not None else "")
    # Strip wrapping decoration left by markdown, brackets, quotes and the paper's <...> form.
    previous = None
    while previous != text:
        previous = text
        text = text.strip().strip("*_`").strip()
        text = text.rstrip(";,").strip()
        for open_, close in list(_QUOTE_PAIRS.items()) + [("[", "]"), ("<", ">"), ("(", ")")]:
            if len(text) >= 2 and text.startswith(open_) and text.endswith(close):
                text = text[1:-1]
        text = text.strip("\"'“”<>").strip()
    return text


def _flatten(text: str) -> str:
    """One line, single spaces: SD prompts do not need newlines, and training targets stay canonical."""
    return re.sub(r"\s+", " ", text.replace('"', "'")).strip()
