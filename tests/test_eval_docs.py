"""docs/EVALUATION.md does not claim a split manifest that the repository does not ship, and says how
to write one."""

from __future__ import annotations

import re


def test_evaluation_doc_is_honest_about_the_split_manifest(repo_root):
    text = (repo_root / "docs" / "EVALUATION.md").read_text(encoding="utf-8")
    shipped = sorted(p.name for p in (repo_root / "training" / "splits").glob("*.json"))
    claims_shipped = re.search(r"manifest shipped|shipped (split )?manifest", text, re.IGNORECASE)
    if not shipped:
        assert not claims_shipped or "No split manifest is shipped" in text
        assert "python -m training.data.split --data /data/HumanEdit" in text
        assert "random.Random(0)" in text and "first 500 as test" in text  # the documented procedure
