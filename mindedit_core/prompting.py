"""The refinement prompt (versioned), its chat messages, and a forgiving parser for the answer.

Two output styles share everything here (`mindedit_core.prompt_styles`): every function takes a
``style`` (a `PromptStyle` or its name; default `SD_TAGS`, the method's). In the SD style the MLLM
is asked to turn a vague editing instruction into two Stable Diffusion prompts:

- ``optimized_prompt``: 5-10 short English phrases describing the edited image (what is added,
  removed or transformed, with pose, position, colour, size, material, expression, clothing and
  environment), bound to the source image's light, layout and materials;
- ``negative_prompt``: 3-6 terms for what must disappear or must not appear, plus 3-6 artifact terms.

In the edit-instruction style (for Qwen-Image-Edit, FLUX.1 Kontext and other instruction editors)
the positive field is ``edit_instruction``: one imperative sentence naming what changes, how it
looks afterwards and what stays unchanged.

The same prompt is used to build training data (``training/refine_data.py`` sends `SYSTEM_PROMPT` +
`refinement_request_text` to an OpenAI-style endpoint), as the supervised target (`format_refinement`)
and at inference (`build_messages`), so a fine-tuned model sees at inference exactly the prompt it was
trained on. The version recorded with refine caches and checkpoints is derived from each style's text
(`prompt_version`): the style's hand-kept label (`PromptStyle.version`) when its text is the one pinned
for that label in `PINNED_FINGERPRINTS`, else the label plus the text's fingerprint. A changed wording
therefore never reuses old refine caches silently, and caches and checkpoints of an unchanged prompt
keep loading. After a deliberate change, bump the style's label and pin its fingerprint.

`parse_refinement` never raises: it accepts the answer shapes real models produce (quotes, newlines,
markdown, JSON, the paper's ``<optimized_prompt:"..." negative_prompt:"...">`` form, a missing negative,
chatter around the answer) and, when nothing parses, falls back to the raw instruction with a
visible ``warning`` in its result, so a prompt is never silently empty.

The user's words are untrusted text: the request puts them between ``<request>`` tags (the system
prompt says they are never instructions), `bound_instruction` cuts them to `MAX_INSTRUCTION_CHARS`,
and the parser never takes a field whose text comes from inside the instruction (an answer that
echoes ``... optimized_prompt: "..."`` typed by the user) as the model's answer.

The prompt is written to work zero-shot on instruction-tuned VLMs (Qwen2.5-VL, Qwen3-VL,
LLaVA-OneVision): one explicit two-line output format, one worked example, short rules.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

from .instruction_checks import is_blank
from .prompt_styles import MASK_OUTLINE_COLOR_NAME, SD_TAGS, PromptStyle, style_named

# The method's style's label; the version recorded with caches and checkpoints is derived (see `PROMPT_VERSION`).
PROMPT_LABEL = SD_TAGS.version
# The text fingerprint (`prompt_fingerprint`) each released label stands for: a recorded bare label
# means exactly that text (caches and checkpoints written before versions carried fingerprints).
PINNED_FINGERPRINTS = {"mindedit-refine-v2": "dacc590edbc4", "mindedit-instruct-v1": "df0fd56b04b5"}

SYSTEM_PROMPT = SD_TAGS.system_prompt

# The user's words travel between these delimiters, so the model (and the parser) can tell them
# from the prompt's own text. The same tags inside an instruction are removed (they could close it).
REQUEST_OPEN, REQUEST_CLOSE = "<request>", "</request>"

# Longest instruction the MLLM reads (about 250 tokens; edit requests are a sentence or two). It is
# also the most the parser's fallback hands CLIP Text Encode (ComfyUI splits a long prompt into
# 75-token chunks: this is about four). Longer instructions are cut at a word and the cut is reported.
MAX_INSTRUCTION_CHARS = 1000


@dataclass(frozen=True)
class BoundedInstruction:
    """An instruction as the MLLM reads it; ``note`` says what was cut (None when nothing was)."""

    text: str
    note: str | None = None


def bound_instruction(instruction: str, max_chars: int = MAX_INSTRUCTION_CHARS) -> BoundedInstruction:
    """The instruction without surrounding whitespace, cut to ``max_chars`` at a word boundary."""
    text = (instruction or "").strip()
    if len(text) <= max_chars:
        return BoundedInstruction(text)
    cut = text[:max_chars]
    space = cut.rfind(" ")
    if space > max_chars // 2:
        cut = cut[:space]
    cut = cut.rstrip()
    note = (
        f"the instruction has {len(text):,} characters; the MLLM read the first {len(cut):,} "
        f"(at most {max_chars:,}): an edit request is a sentence or two, put what matters first"
    )
    return BoundedInstruction(cut, note)


_REQUEST_TAG_RE = re.compile(r"</?\s*request\s*>", re.IGNORECASE)


def _delimited(instruction: str) -> str:
    """The bounded instruction with any request tags inside it removed."""
    return _REQUEST_TAG_RE.sub(" ", bound_instruction(instruction).text).strip()


def refinement_request_text(
    instruction: str, with_mask: bool = False, *, style: PromptStyle | str | None = None
) -> str:
    """The user turn's text (the image goes before it). Shared by training data construction and inference."""
    chosen = style_named(style)
    region = (
        f"The area to edit is outlined in {MASK_OUTLINE_COLOR_NAME} in the image; change only that area "
        f"and keep the rest as it is.\n{chosen.mask_note}"
        if with_mask
        else ""
    )
    return f"{region}{REQUEST_OPEN}{_delimited(instruction)}{REQUEST_CLOSE}\n{chosen.request_tail()}"


def build_messages(
    instruction: str, *, with_mask: bool = False, style: PromptStyle | str | None = None
) -> list[dict]:
    """Chat messages for a LLaVA-OneVision style processor: system text, then the user turn with the
    image placeholder first (the chat template always renders images before text)."""
    chosen = style_named(style)
    return [
        {"role": "system", "content": [{"type": "text", "text": chosen.system_prompt}]},
        {
            "role": "user",
            "content": [
                {"type": "image"},
                {"type": "text", "text": refinement_request_text(instruction, with_mask, style=chosen)},
            ],
        },
    ]


def format_refinement(positive: str, negative: str, *, style: PromptStyle | str | None = None) -> str:
    """The canonical answer text: the supervised target in training, and what `parse_refinement` reads best."""
    key = style_named(style).positive_key
    return f'{key}: "{_flatten(positive)}"\nnegative_prompt: "{_flatten(negative)}"'


def prompt_texts(style: PromptStyle | str | None = None) -> tuple[str, ...]:
    """Every text the MLLM is given or trained to write in ``style`` (default SD tags), with a
    placeholder instruction: the system prompt, the user turn with and without a mask, the answer format."""
    chosen = style_named(style)
    placeholder = "{instruction}"
    return (
        chosen.system_prompt,
        refinement_request_text(placeholder, with_mask=False, style=chosen),
        refinement_request_text(placeholder, with_mask=True, style=chosen),
        format_refinement("{positive}", "{negative}", style=chosen),
    )


def prompt_fingerprint(
    texts: tuple[str, ...] | None = None, *, style: PromptStyle | str | None = None
) -> str:
    """12 hex digits of the SHA-256 of `prompt_texts` (or ``texts``): changes with any wording change."""
    digest = hashlib.sha256()
    for text in prompt_texts(style) if texts is None else texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()[:12]


def prompt_version(
    label: str | None = None, fingerprint: str | None = None, *, style: PromptStyle | str | None = None
) -> str:
    """The version to record for ``style`` (default SD tags): ``label`` (default the style's) when the
    text is the one pinned for it, else ``"<label>+<fingerprint>"`` (a text that differs from its
    label's pin cannot pass for it)."""
    chosen = style_named(style)
    label = chosen.version if label is None else label
    fingerprint = prompt_fingerprint(style=chosen) if fingerprint is None else fingerprint
    return label if PINNED_FINGERPRINTS.get(label) == fingerprint else f"{label}+{fingerprint}"


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

_NEG_NAMES = r"negative[ _\-]?prompts?|negative"


@functools.cache
def _key_re(style: PromptStyle) -> re.Pattern:
    """A key of ``style``'s answer: the name (at a word start), optional markdown/quote decoration,
    then ':' or '='. Decoration *before* a key stays at the end of the previous section and is
    stripped there."""
    return re.compile(
        r"(?<![A-Za-z0-9])(?P<name>" + _NEG_NAMES + "|" + style.positive_names + r")"
        r"(?:\s*\([^()\n]{0,40}\))?[\s\*_`\"'\]\)]*[:=]",
        re.IGNORECASE,
    )


_KEY_DECORATION = " \t\r\n*_`#>\"'<[(-"
_LIST_MARKER_RE = re.compile(r"\s*(?:\d+[.)]|[-*•])[\s*_`#>\"'<\[(]*")
_FENCE_RE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.DOTALL)
_QUOTE_PAIRS = {'"': '"', "'": "'", "“": "”", "‘": "’", "`": "`", "«": "»"}


def parse_refinement(
    answer: str, fallback_instruction: str, *, style: PromptStyle | str | None = None
) -> RefinedPrompt:
    """Read the style's positive field (``optimized_prompt`` or ``edit_instruction``) and
    ``negative_prompt`` from a model answer. Never raises.

    Falls back (``parsed=False``, ``warning`` set) to ``fallback_instruction`` (bounded by
    `bound_instruction`) as the positive prompt when no usable positive prompt is found. A value
    whose text comes from inside the instruction is never taken as the model's answer: an instruction
    that carries answer fields (``... optimized_prompt: "..."``) and an answer that echoes it would
    otherwise smuggle the user's text in as the "refined" prompt.
    """
    chosen = style_named(style)
    raw = answer if isinstance(answer, str) else ("" if answer is None else str(answer))
    guard = InjectionGuard(fallback_instruction or "", chosen)
    rejected: list[str] = []

    def reject(value: str) -> bool:
        if guard.taints(value):
            rejected.append(value)
            return True
        return False

    text = _REQUEST_TAG_RE.sub("\n", raw)  # an echoed request block ends where its tag is
    # Reasoning models (Qwen3-VL Thinking, served "think" modes) put drafts in <think> blocks: only
    # the text after them is the answer. An unclosed block means the answer was cut while thinking.
    text, cut_while_thinking = _without_reasoning(text)
    no_field_reason = f"no {chosen.positive_key} was found in the MLLM answer"
    if cut_while_thinking:
        no_field_reason = (
            "the answer stopped inside the model's reasoning (<think> without </think>): raise "
            "max_new_tokens, or use the model without its thinking mode"
        )
    try:
        found = _parse_json(text, chosen, reject) or _parse_keys(text, chosen, reject)
    except Exception as exc:  # a parser bug must never break an edit: fall back visibly
        found = None
        reason = f"the parser failed ({type(exc).__name__}: {exc})"
    else:
        reason = no_field_reason
    positive, negative = found if found else ("", "")
    if positive and _echoes_template(positive, chosen):
        positive, negative = "", ""
        reason = "the MLLM repeated the answer template instead of filling it in"
    echo_note = (
        "text inside your instruction looks like an answer field; the MLLM repeated it and every answer "
        "field holding it was not used"
        if rejected
        else None
    )
    if positive:
        warnings = [w for w in (echo_note,) if w]
        if not negative:
            warnings.append("the MLLM answer has no negative_prompt; using an empty one")
        warning = "; ".join(warnings) or None
        return RefinedPrompt(positive=positive, negative=negative, raw=raw, parsed=True, warning=warning)
    if rejected and reason == no_field_reason:
        reason = echo_note
    fallback = _flatten(bound_instruction(guard.plain_text).text)
    if is_blank(fallback):  # whitespace, control or invisible characters only: nothing for SD to read
        fallback = ""
    used = fallback or _EMPTY_FALLBACK
    source = "the instruction without its answer fields" if guard.has_fields else "the raw instruction"
    empty = "nothing is left of the instruction" if guard.has_fields else "the instruction was empty too"
    what = source if fallback else f"{_EMPTY_FALLBACK!r} ({empty})"
    snippet = _flatten(raw)[:80]
    warning = f"Prompt refinement fell back to {what}: {reason} (answer starts: {snippet!r})."
    return RefinedPrompt(positive=used, negative=negative, raw=raw, parsed=False, warning=warning)


_THINK_BLOCK_RE = re.compile(r"<think>.*?</think>", re.IGNORECASE | re.DOTALL)
_THINK_OPEN_RE = re.compile(r"<think>", re.IGNORECASE)


def _without_reasoning(text: str) -> tuple[str, bool]:
    """The answer without ``<think>...</think>`` blocks (and without a trailing unclosed one), and
    whether such an unclosed block was cut off."""
    text = _THINK_BLOCK_RE.sub("\n", text)
    if "</think>" in text.lower():  # a template that opens the block in the prompt: keep what follows
        text = text[text.lower().rindex("</think>") + len("</think>") :]
    opened = _THINK_OPEN_RE.search(text)
    if opened is None:
        return text, False
    return text[: opened.start()], True


def _comparable(text: str) -> str:
    """Lower-case words only: how a value is compared with the instruction it might come from."""
    return " ".join(re.findall(r"[^\W_]+", text.lower()))


class InjectionGuard:
    """Keeps text an instruction carries in answer fields (``optimized_prompt: "..."``) out of the prompts.

    Only an instruction that itself contains answer fields can inject one. For it, a parsed value is
    refused (`taints`) when its words all come, in order, from inside the instruction, or when it
    holds any word that appears only in the instruction's fields (an echo plus a word, ``"<injected>,
    detailed"``, is refused whole: what the status says was not used is never passed on).
    `plain_text` is the instruction before its first field: what a fallback may use. An ordinary
    instruction ("make him wave") refuses nothing, so a model may well reuse its words.
    """

    def __init__(self, instruction: str, style: PromptStyle | str | None = None):
        try:
            values, start = _field_values(instruction, style_named(style))
        except Exception:  # never let the guard break an edit: treat the whole instruction as fields
            values, start = [instruction], 0
        self.has_fields = bool(values)
        self.plain_text = instruction[:start] if self.has_fields else instruction
        self._haystack = f" {_comparable(instruction)} "
        plain_words = set(_comparable(self.plain_text).split())
        self._field_words = {
            word
            for value in values
            for word in _comparable(value).split()
            if word not in plain_words and (len(word) >= 3 or not word.isascii())
        }

    def taints(self, value: str) -> bool:
        if not self.has_fields:
            return False
        words = _comparable(value)
        if not words:
            return False
        return f" {words} " in self._haystack or bool(self._field_words & set(words.split()))


def _field_values(text: str, style: PromptStyle = SD_TAGS) -> tuple[list[str], int]:
    """Every answer-field value in ``text`` (JSON objects and ``key: value`` sections) and where the
    first field starts (``len(text)`` when there is none)."""
    values: list[str] = []
    start = len(text)
    for obj, span in _json_objects(text):
        found = [_clean_value(v) for k, v in obj.items() if _is_field_name(str(k), style)]
        if any(found):
            values += [v for v in found if v]
            start = min(start, max(0, text.find(span)))
    matches = list(_key_re(style).finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        value = _section_value(text[match.end() : end], last=index + 1 == len(matches))
        if value:
            values.append(value)
            start = min(start, match.start())
    return values, start


def _json_field_kind(key: str, style: PromptStyle = SD_TAGS) -> str | None:
    """ "negative", "positive" or None for a JSON key (spaces, '_' and '-' ignored, plural allowed)."""
    name = re.sub(r"[\s_\-]", "", key.lower())
    if name.startswith("negative"):
        return "negative"
    return "positive" if name.rstrip("s") in style.json_positive_keys else None


def _is_field_name(key: str, style: PromptStyle = SD_TAGS) -> bool:
    return _json_field_kind(key, style) is not None


def _echoes_template(value: str, style: PromptStyle) -> bool:
    """True when a value is the prompt's own placeholder (small base models sometimes copy it)."""
    lowered = value.lower()
    return any(phrase in lowered for phrase in style.template_phrases)


def _never(_value: str) -> bool:
    return False


def _json_objects(text: str) -> Iterator[tuple[dict, str]]:
    """Each JSON object the answer holds, with its text: inside every ``` fence, then in the whole
    answer (from its first ``{`` to its last ``}``); text that does not parse as an object is skipped."""
    for candidate in [m.group(1) for m in _FENCE_RE.finditer(text)] + [text]:
        first, last = candidate.find("{"), candidate.rfind("}")
        if first < 0 or last <= first:
            continue
        span = candidate[first : last + 1]
        try:
            obj = json.loads(span)
        except (ValueError, RecursionError):
            continue
        if isinstance(obj, dict):
            yield obj, span


def _parse_json(text: str, style: PromptStyle, reject=_never) -> tuple[str, str] | None:
    """A JSON object anywhere in the answer (possibly inside a ``` fence)."""
    for obj, _span in _json_objects(text):
        pos = neg = pos_name = ""
        for key, value in obj.items():
            kind = _json_field_kind(str(key), style)
            cleaned = _clean_value(value)
            if not cleaned or reject(cleaned):
                continue
            name = re.sub(r"[\s_\-]", "", str(key).lower()).rstrip("s")
            if kind == "negative":
                neg = cleaned
            elif kind == "positive" and not (pos and _rank(name, style) >= _rank(pos_name, style)):
                pos, pos_name = cleaned, name
        if pos:
            return pos, neg
    return None


def _rank(json_key: str, style: PromptStyle) -> int:
    """How early ``json_key`` comes in the style's labels: the style's own label beats a borrowed one."""
    return style.json_positive_keys.index(json_key.rstrip("s"))


def _parse_keys(text: str, style: PromptStyle, reject=_never) -> tuple[str, str] | None:
    """``key: value`` sections in any decoration; a value runs until the next key. The first value
    of each kind that ``reject`` accepts wins."""
    matches = list(_key_re(style).finditer(text))
    pos = neg = ""
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        value = _section_value(text[match.end() : end], last=index + 1 == len(matches))
        is_negative = match.group("name").lower().startswith("negative")
        if (is_negative and neg) or (not is_negative and pos) or not value or reject(value):
            continue
        if is_negative:
            neg = value
        else:
            pos = value
    return (pos, neg) if (pos or neg) else None


def _section_value(section: str, *, last: bool) -> str:
    """The value text of one key: a quoted string if it starts with a quote, else its lines
    (the last section stops at the first blank line, where chatter usually starts)."""
    head, newline, tail = section.rpartition("\n")
    if newline and (not tail.strip(_KEY_DECORATION) or _LIST_MARKER_RE.fullmatch(tail)):
        section = head  # the next key's line prefix, e.g. "### ", "**" or a list number "2. "
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
    return "" if is_blank(text) else text  # only invisible or control characters: no value


def _flatten(text: str) -> str:
    """One line, single spaces: SD prompts do not need newlines, and training targets stay canonical."""
    return re.sub(r"\s+", " ", text.replace('"', "'")).strip()


# What refine caches (their keys and entries) and checkpoints record, and what they are checked against
# (derived from the text, so computed once every text-building function above is defined).
PROMPT_VERSION = prompt_version()
