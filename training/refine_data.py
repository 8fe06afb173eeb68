"""Data construction: fill the refined-prompt targets (``optimized_prompt`` / ``negative_prompt``,
or ``edit_instruction`` / ``negative_prompt`` with ``--style edit_instruction``).

Every record's source image (mask outlined when used) and instruction are sent with the shared
refinement prompt of the chosen style (`mindedit_core.prompting`, `mindedit_core.prompt_styles`) to
an OpenAI-compatible endpoint through the pack's one chat client (`mindedit_core.remote.chat_client`;
the method used GPT-4o), or to a local MLLM through the core loader. The cache records the style's
prompt version, so the two styles' answers never mix. Answers go through the core parser
(`parse_refinement`) and land in an append-only JSONL cache (`training.refine_cache`): a killed run
resumes where it stopped, never repeating an answered request; only the requests in flight at the
kill (at most ``--concurrency``; their answers never arrived) are sent again, and the resumed run
prints how many. Failures and unparseable answers are recorded, not dropped, and reported at the end.

    export OPENAI_API_KEY=...
    python -m training.refine_data --format humanedit --data /data/HumanEdit \\
        --out runs/refined.jsonl --base-url https://api.openai.com/v1 --model gpt-4o --concurrency 8

    python -m training.refine_data --format humanedit --data /data/HumanEdit --style edit_instruction \\
        --out runs/instructions.jsonl --base-url http://127.0.0.1:11434/v1 --model qwen2.5vl:7b

    python -m training.refine_data --format jsonl --data my_edits/ --out refined.jsonl \\
        --local-mllm /models/llava-onevision-qwen2-7b-ov-hf

Several processes (``RANK``/``WORLD_SIZE``, e.g. under torchrun): process k takes records k, k+n, ...
and appends to its own ``<out stem>.rank<k>-of-<n>.jsonl``; ``--merge --out OUT`` then appends them to
OUT (resumable).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass

from mindedit_core.prompt_styles import SD_TAGS, STYLE_NAMES, PromptStyle, style_named
from mindedit_core.prompting import RefinedPrompt, build_messages, parse_refinement, prompt_version
from mindedit_core.remote.chat_client import ChatClient, ChatRequestError, openai_messages

from .cli_errors import add_verbose_flag, run_command
from .data.record import EditRecord, image_bytes
from .mllm_inputs import record_image
from .parent_watch import watch_launcher
from .refine_cache import (
    STATUS_ERROR,
    STATUS_OK,
    STATUS_SENT,
    STATUS_UNPARSED,
    CacheEntry,
    RefineCache,
    merge_rank_files,
    rank_file,
    request_key,
)
from .shards import shard_from_env

log = logging.getLogger(__name__)

DEFAULT_MAX_SIDE = 768  # what the API sees; the tiled model itself trains at 384 by default


@dataclass
class RefineJob:
    """One request still to make. Holds the record's position, not the record: HumanEdit's images
    would not fit in memory all at once."""

    index: int
    record_id: str
    instruction: str
    key: str
    use_mask: bool


# (record, prepared image, with_mask) -> (raw answer text, attempts)
AnswerFn = Callable[[EditRecord, "object", bool], tuple[str, int]]


def job_key(
    record: EditRecord,
    *,
    model: str,
    use_mask: bool,
    max_side: int | None,
    style: PromptStyle | str | None = None,
) -> str:
    mask = image_bytes(record.mask) if (use_mask and record.mask is not None) else None
    return request_key(
        model=model,
        prompt_version=prompt_version(style=style),
        record_id=record.id,
        instruction=record.instruction,
        image=image_bytes(record.source),
        mask=mask,
        max_side=max_side,
    )


def plan_jobs(
    records: Sequence[EditRecord],
    cache: RefineCache,
    *,
    model: str,
    use_mask: bool,
    max_side: int | None,
    style: PromptStyle | str | None = None,
) -> tuple[list[RefineJob], int, int]:
    """The requests still to make (in record order), how many the cache already answers, and how many
    of the requests to make were in flight when a previous run was killed (they are sent again)."""
    jobs, done, resent = [], 0, 0
    for index in range(len(records)):
        record = records[index]
        key = job_key(record, model=model, use_mask=use_mask, max_side=max_side, style=style)
        if cache.answered(key):
            done += 1
        else:
            resent += cache.in_flight(key)
            jobs.append(RefineJob(index, record.id, record.instruction, key, use_mask))
    return jobs, done, resent


def _entry(job: RefineJob, model: str, style: PromptStyle, **fields) -> CacheEntry:
    return CacheEntry(
        key=job.key,
        id=job.record_id,
        model=model,
        prompt_version=prompt_version(style=style),
        instruction=job.instruction,
        **fields,
    )


def _run_one(
    job: RefineJob,
    records: Sequence[EditRecord],
    answer_fn: AnswerFn,
    model: str,
    max_side: int | None,
    cache: RefineCache,
    style: PromptStyle,
) -> CacheEntry:
    try:
        record = records[job.index]
        image, with_mask = record_image(record, use_mask=job.use_mask, max_side=max_side)
        cache.append(_entry(job, model, style, status=STATUS_SENT))  # a kill from here on re-sends this one
        raw, attempts = answer_fn(record, image, with_mask)
    except ChatRequestError as exc:
        return _entry(job, model, style, status=STATUS_ERROR, error=str(exc))
    except Exception as exc:  # a bad image or a local-model failure: record it, keep going
        return _entry(job, model, style, status=STATUS_ERROR, error=f"{type(exc).__name__}: {exc}")
    refined: RefinedPrompt = parse_refinement(raw, job.instruction, style=style)
    status = STATUS_OK if refined.parsed else STATUS_UNPARSED
    return _entry(
        job,
        model,
        style,
        status=status,
        positive=refined.positive if refined.parsed else "",
        negative=refined.negative if refined.parsed else "",
        raw=raw,
        warning=refined.warning,
        attempts=attempts,
    )


def run_refinement(
    records: Sequence[EditRecord],
    cache: RefineCache,
    answer_fn: AnswerFn,
    *,
    model: str,
    concurrency: int = 4,
    use_mask: bool = True,
    max_side: int | None = DEFAULT_MAX_SIDE,
    progress: bool = True,
    style: PromptStyle | str | None = None,
) -> dict[str, int]:
    """Answer every record not yet in ``cache``, at most ``concurrency`` requests at a time, parsing the
    answers in ``style`` (the one ``answer_fn`` asks for; default SD tags).

    Returns counts: ``cached`` (skipped), ``resent`` (in flight when a previous run was killed, sent
    again), ``ok``, ``unparsed``, ``error`` for this run.
    """
    chosen = style_named(style)
    jobs, cached, resent = plan_jobs(
        records, cache, model=model, use_mask=use_mask, max_side=max_side, style=chosen
    )
    if resent:
        log.warning(
            "Resuming: %d request(s) were in flight when the previous run stopped; their answers never "
            "arrived, so they are sent again (a paid API bills them twice). Every answered request is reused.",
            resent,
        )
    counts = {"cached": cached, "resent": resent, STATUS_OK: 0, STATUS_UNPARSED: 0, STATUS_ERROR: 0}
    bar = _progress(len(jobs), progress)
    pending = iter(jobs)
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        # Submit lazily: a kill then re-sends at most `concurrency` in-flight requests, none answered.
        running = set()
        for job in pending:
            running.add(pool.submit(_run_one, job, records, answer_fn, model, max_side, cache, chosen))
            if len(running) >= concurrency:
                break
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                entry = future.result()
                cache.append(entry)
                counts[entry.status] += 1
                if entry.status == STATUS_ERROR:
                    log.warning("record %s: %s", entry.id, entry.error)
                elif entry.status == STATUS_UNPARSED:
                    log.warning("record %s: %s", entry.id, entry.warning)
                bar.update(1)
                nxt = next(pending, None)
                if nxt is not None:
                    running.add(
                        pool.submit(_run_one, nxt, records, answer_fn, model, max_side, cache, chosen)
                    )
    bar.close()
    return counts


def _progress(total: int, enabled: bool):
    try:
        from tqdm import tqdm

        return tqdm(total=total, desc="refine", unit="req", disable=not enabled)
    except ImportError:  # tqdm is optional

        class _Null:
            def update(self, n: int) -> None: ...
            def close(self) -> None: ...

        return _Null()


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def http_answer_fn(client: ChatClient, style: PromptStyle | str | None = None) -> AnswerFn:
    """Answers from an OpenAI-compatible endpoint: the style's messages (as the nodes send them)."""
    chosen = style_named(style)

    def answer(record: EditRecord, image, with_mask: bool) -> tuple[str, int]:
        messages = build_messages(record.instruction, with_mask=with_mask, style=chosen)
        return client.complete(openai_messages(messages, _png(image)))

    return answer


def local_answer_fn(
    model_dir: str,
    *,
    checkpoint_dir: str | None = None,
    max_new_tokens: int = 256,
    max_side: int | None = DEFAULT_MAX_SIDE,
    style: PromptStyle | str | None = None,
) -> AnswerFn:
    """Answers from a local VLM folder (any supported family) through the core loader (no API needed).

    ``max_side`` is the longest image side the MLLM reads, the same setting the cache key records
    (``None`` keeps the original size)."""
    import threading

    from mindedit_core.mllm import PassRequest, load_mllm

    mllm = load_mllm(model_dir, checkpoint_dir=checkpoint_dir, max_side=max_side)
    lock = threading.Lock()  # one model, one request at a time

    def answer(record: EditRecord, image, with_mask: bool) -> tuple[str, int]:
        # The runner prepares the image itself (resize, mask outline): give it the originals.
        mask = record.load_mask() if with_mask else None
        options = mllm.default_options.with_overrides(
            max_new_tokens=max_new_tokens, style=style_named(style).name
        )
        with lock:
            result = mllm.run(
                PassRequest(record.load_source(), record.instruction, mask=mask, options=options)
            )
        return result.text, 1

    return answer


def build_parser() -> argparse.ArgumentParser:
    from .data.loader import DATASET_FORMATS

    p = argparse.ArgumentParser(
        prog="python -m training.refine_data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--format", choices=DATASET_FORMATS, default="humanedit")
    p.add_argument("--data", default=None, help="local dataset path (required unless --merge)")
    p.add_argument("--out", required=True, help="JSONL cache to append to (resumes when it exists)")
    p.add_argument(
        "--merge",
        action="store_true",
        help="merge the per-process files of a sharded run (RANK/WORLD_SIZE) into --out, then stop",
    )
    p.add_argument("--column-map", nargs="*", default=None, help="role=column entries (complex_multistep)")
    p.add_argument("--mask-polarity", default=None, choices=("white_is_edit", "black_is_edit", "auto"))
    p.add_argument("--split", default=None, help="split manifest; with --subset, only those ids")
    p.add_argument("--subset", default=None, choices=("train", "test"))
    p.add_argument("--limit", type=int, default=None, help="only the first N records")
    p.add_argument("--no-mask", action="store_true", help="do not outline masks in the image")
    p.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE, help="longest image side sent (px)")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument(
        "--style",
        choices=STYLE_NAMES,
        default=SD_TAGS.name,
        help="output style: SD tag prompts (the method's) or one edit instruction (instruction editors)",
    )
    api = p.add_argument_group("OpenAI-compatible endpoint")
    api.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1"))
    api.add_argument("--model", default="gpt-4o")
    api.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the key")
    api.add_argument("--max-retries", type=int, default=6)
    api.add_argument("--timeout", type=float, default=120.0)
    local = p.add_argument_group("local MLLM instead of an endpoint")
    local.add_argument("--local-mllm", default=None, help="a supported VLM folder (transformers format)")
    local.add_argument("--local-checkpoint", default=None, help="optional MIND-Edit checkpoint folder")
    p.add_argument("--quiet", action="store_true")
    return p


def select_records(args) -> Sequence[EditRecord]:
    from .data.loader import load_records, parse_column_map, record_ids
    from .data.split import SplitManifest

    records = load_records(
        args.format, args.data, mask_polarity=args.mask_polarity, column_map=parse_column_map(args.column_map)
    )
    if args.split and args.subset:
        wanted = set(getattr(SplitManifest.load(args.split), args.subset))
        # Select by id column first: reading every row would read every image.
        from .train_data import SelectedRecords

        ids = record_ids(records)
        positions = [i for i, rid in enumerate(ids) if rid in wanted]
        records = SelectedRecords(records, positions, [ids[i] for i in positions], {})
    if args.limit is not None:
        records = records[: args.limit]
    return records


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    add_verbose_flag(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(message)s"
    )
    return run_command(lambda: _run(args), verbose=args.verbose)


def _run(args: argparse.Namespace) -> int:
    if args.merge:
        merged = merge_rank_files(args.out)
        print(
            f"refine_data: merged {merged['lines']} lines from {merged['files']} per-process files into {args.out}"
        )
        return 0
    if not args.data:
        raise ValueError("--data is required (the local dataset to refine), unless --merge.")
    shard = shard_from_env()
    records = shard.view(select_records(args))
    watch_launcher()  # under torchrun: stop when the launcher is killed
    if args.local_mllm:
        model_name = f"local:{os.path.basename(os.path.normpath(args.local_mllm))}"
        if args.local_checkpoint:
            model_name += f"+{os.path.basename(os.path.normpath(args.local_checkpoint))}"
        answer_fn = local_answer_fn(
            args.local_mllm, checkpoint_dir=args.local_checkpoint, max_side=args.max_side, style=args.style
        )
        concurrency = 1
    else:
        key = os.environ.get(args.api_key_env)
        if not key:
            log.warning(
                "$%s is not set: sending requests without an API key (fine for local servers).",
                args.api_key_env,
            )
        client = ChatClient(
            args.base_url, args.model, key, timeout_s=args.timeout, max_retries=args.max_retries
        )
        model_name, answer_fn, concurrency = args.model, http_answer_fn(client, args.style), args.concurrency
    if shard.sharded:
        # Each process appends to its own file (no shared appends across machines); answers already
        # merged into --out are reused. Merge when every process is done: --merge --out OUT.
        cache = RefineCache(rank_file(args.out, shard.index, shard.count), also_read=[args.out])
    else:
        cache = RefineCache(args.out)
    counts = run_refinement(
        records,
        cache,
        answer_fn,
        model=model_name,
        concurrency=concurrency,
        use_mask=not args.no_mask,
        max_side=args.max_side,
        progress=not args.quiet,
        style=args.style,
    )
    print(
        f"refine_data: {counts['cached']} already cached, {counts['resent']} sent again (in flight when the "
        f"previous run stopped), {counts['ok']} answered, "
        f"{counts['unparsed']} unparseable (kept in {args.out}), {counts['error']} failed "
        "(rerun to retry them)."
    )
    if shard.sharded:
        print(
            f"refine_data: process {shard.index} of {shard.count} wrote {cache.path}; when every process is "
            f"done, merge with `python -m training.refine_data --merge --out {args.out}`."
        )
    return 0 if counts[STATUS_ERROR] == 0 else 2


if __name__ == "__main__":
    sys.exit(main())
