"""The README's "From Parquet files to a filtered training run" works when pasted."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[3] / "README.md"


def readme_block(heading: str) -> str:
    text = README.read_text()
    section = text[text.index(f"## {heading}\n") :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, heading
    return blocks[0]


def test_parquet_to_training_run(tmp_path, monkeypatch, ray_session, spark):
    import datasets

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf"))
    code = readme_block("From Parquet files to a filtered training run")
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    forum = tmp_path / "forum"
    assert (tmp_path / "run-1.optm").exists() and (forum / "year=2025" / "part-0.parquet").exists()
    # The export left the data files as they were and committed one version
    # over them (the conversion is version 0): an independent reader of the
    # table, deltalake's SQL engine, sees the 1,960 kept rows, none of user7's.
    import deltalake

    t = deltalake.DeltaTable(str(forum))
    assert t.version() == 1
    assert sorted(Path(f).name for f in t.file_uris()) == ["part-0.parquet", "part-0.parquet"]
    qb = deltalake.QueryBuilder().register("forum", t)
    authors = qb.execute("SELECT author FROM forum").read_all()["author"].to_pylist()
    assert len(authors) == 1960 and "user7@example.com" not in authors
