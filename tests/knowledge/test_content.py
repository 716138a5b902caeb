"""The shipped knowledge base is complete and well-formed; bad content is refused by name."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import jinja2
import pytest

from handlers.knowledge import (
    ContentError,
    Entry,
    EvalCase,
    KnowledgeBase,
    load_entries,
    load_eval_cases,
)
from handlers.knowledge.content import NO_ENTRY, load_declines, load_synonyms
from handlers.knowledge.text import normalize

KB = Path(__file__).resolve().parents[2] / "content" / "kb"

# A law or document: a title in 《》 or an official document number such as 工发〔1978〕101号.
DOCUMENT = re.compile(r"《[^》]+》|〔\d{4}〕\d+号")
# An article or section: 第三十条, 第二款, 第（五）项, 第二部分 …
ARTICLE = re.compile(r"第[（(]?[一二三四五六七八九十百千零〇两\d]+[)）]?[条款项章节部分点]")


@pytest.fixture(scope="module")
def entries() -> dict[str, Entry]:
    return load_entries([KB])


@pytest.fixture(scope="module")
def cases(entries: dict[str, Entry]) -> list[EvalCase]:
    return load_eval_cases([KB], known_ids=entries.keys())


def test_every_source_names_a_document_and_an_article(entries: dict[str, Entry]) -> None:
    missing = [
        f"{e.id}: {e.source}"
        for e in entries.values()
        if not (DOCUMENT.search(e.source) and ARTICLE.search(e.source))
    ]
    assert not missing, "sources without a document or an article:\n" + "\n".join(missing)


def test_no_question_is_under_two_entries(entries: dict[str, Entry]) -> None:
    owners: dict[str, set[str]] = {}
    for entry in entries.values():
        for question in (entry.title, *entry.questions):
            owners.setdefault(normalize(question), set()).add(entry.id)
    shared = {q: ids for q, ids in owners.items() if len(ids) > 1}
    assert not shared


def test_answers_render_strictly_as_plain_text_within_300_characters(
    entries: dict[str, Entry],
) -> None:
    # The same kind of environment the replies use: no HTML escaping, undefined names fail.
    env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)
    too_long = []
    for entry in entries.values():
        text = env.from_string(entry.answer).render().strip()
        if len(text) > 300:
            too_long.append(f"{entry.id}: {len(text)}")
    assert not too_long, "answers over 300 characters: " + ", ".join(too_long)


def test_related_and_followup_ids_exist(entries: dict[str, Entry]) -> None:
    for entry in entries.values():
        targets = list(entry.related)
        if entry.followup is not None:
            targets += [target for _, target in entry.followup.choices]
        assert set(targets) <= entries.keys(), entry.id


def test_enough_entries_and_evaluation_cases(
    entries: dict[str, Entry], cases: list[EvalCase]
) -> None:
    categories = [e.category for e in entries.values()]
    assert categories.count("enrolment") >= 30
    assert categories.count("legal") >= 60
    in_scope = [c for c in cases if c.expect != NO_ENTRY]
    assert len(in_scope) >= 400
    assert {c.split for c in cases} == {"tune", "test"}
    assert any(c.expect == NO_ENTRY for c in cases if c.split == "test")


def test_eval_cases_are_not_copies_of_the_questions(
    entries: dict[str, Entry], cases: list[EvalCase]
) -> None:
    # A case that repeats a question, or a message learnt as not ours, measures nothing.
    questions = {normalize(q) for e in entries.values() for q in (e.title, *e.questions)}
    copies = [c.text for c in cases if normalize(c.text) in questions]
    assert not copies
    declines = {normalize(text) for text in load_declines([KB], entries)}
    assert len(declines) >= 100
    assert not [c.text for c in cases if normalize(c.text) in declines]


def test_synonym_table_loads() -> None:
    synonyms = load_synonyms([KB])
    assert synonyms.typos["公会"] == "工会"
    assert synonyms.variants["炒鱿鱼"] == synonyms.variants["开除"]


# ── bad content is refused, naming the file and the entry ───────────────────────────────────

GOOD = """
[[entry]]
id = "t.one"
category = "legal"
title = "第一个问题"
questions = ["工资没发怎么办"]
answer = "答案一"
source = "《中华人民共和国劳动法》第五十条"
related = ["t.two"]

[[entry]]
id = "t.two"
category = "legal"
title = "第二个问题"
questions = ["被开除了怎么办"]
answer = "答案二"
source = "《中华人民共和国劳动合同法》第四十八条"
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_good_content_loads(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", GOOD)
    assert set(load_entries([tmp_path])) == {"t.one", "t.two"}


@pytest.mark.parametrize(
    ("change", "entry_id", "message"),
    [
        ('source = "《中华人民共和国劳动法》第五十条"\n', "t.one", "'source' is missing"),
        ('related = ["t.two"]', "t.one", "unknown entry 't.three'"),
        ('questions = ["被开除了怎么办"]', "t.two", "also under 't.one'"),
        ('category = "legal"\ntitle = "第二', "t.two", "category must be"),
    ],
)
def test_bad_content_names_file_and_entry(
    tmp_path: Path, change: str, entry_id: str, message: str
) -> None:
    broken = {
        "'source' is missing": GOOD.replace(change, "", 1),
        "unknown entry 't.three'": GOOD.replace(change, 'related = ["t.three"]'),
        "also under 't.one'": GOOD.replace(change, 'questions = ["工资没发怎么办？"]'),
        "category must be": GOOD.replace(change, 'category = "misc"\ntitle = "第二'),
    }[message]
    path = write(tmp_path, "a.toml", broken)
    with pytest.raises(ContentError) as info:
        load_entries([tmp_path])
    assert str(path) in str(info.value)
    assert f"[{entry_id}]" in str(info.value)
    assert message in str(info.value)


def test_the_same_id_twice_in_one_folder_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", GOOD)
    second = write(tmp_path, "b.toml", GOOD.split("[[entry]]")[2].join(["[[entry]]", ""]))
    with pytest.raises(ContentError, match=r"duplicate id") as info:
        load_entries([tmp_path])
    assert str(second) in str(info.value)


def test_a_later_folder_overrides_by_id(tmp_path: Path) -> None:
    write(tmp_path / "base", "a.toml", GOOD)
    override = GOOD.split("[[entry]]")[2].replace("答案二", "本地的答案")
    write(tmp_path / "local", "a.toml", "[[entry]]" + override)
    entries = load_entries([tmp_path / "base", tmp_path / "local"])
    assert entries["t.two"].answer == "本地的答案"
    assert entries["t.one"].answer == "答案一"


def test_broken_toml_and_bad_eval_cases_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "a", "a.toml", "[[entry]\n")
    with pytest.raises(ContentError, match="not valid TOML") as info:
        load_entries([tmp_path / "a"])
    assert str(path) in str(info.value)
    write(tmp_path / "b", "a.toml", GOOD)
    cases = write(tmp_path / "b", "eval_a.toml", '[[case]]\ntext = "x"\nexpect = "t.nine"\n')
    with pytest.raises(ContentError, match="split") as info:
        load_eval_cases([tmp_path / "b"])
    assert str(cases) in str(info.value)
    cases.write_text('[[case]]\ntext = "x"\nexpect = "t.nine"\nsplit = "tune"\n', "utf-8")
    with pytest.raises(ContentError, match=r"unknown id 't\.nine'"):
        load_eval_cases([tmp_path / "b"], known_ids={"t.one", "t.two"})


def test_a_message_both_asked_and_declined_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", GOOD)
    path = write(tmp_path, "decline.txt", "# 不归我们答\n车险哪家便宜\n\n被开除了怎么办！\n")
    with pytest.raises(
        ContentError, match=r"line 4: '被开除了怎么办！' is a question of 't\.two'"
    ) as info:
        load_declines([tmp_path], load_entries([tmp_path]))
    assert str(path) in str(info.value)
    path.write_text("车险哪家便宜  # 保险\n", encoding="utf-8")
    assert load_declines([tmp_path], load_entries([tmp_path])) == ["车险哪家便宜"]
    # Compared as the search sees them: 解雇 and 开除 are one once synonyms are rewritten.
    path.write_text("被解雇了怎么办\n", encoding="utf-8")
    assert load_declines([tmp_path], load_entries([tmp_path])) == ["被解雇了怎么办"]
    with pytest.raises(ContentError, match=r"line 1: '被解雇了怎么办' is a question of 't\.two'"):
        KnowledgeBase.load([KB, tmp_path])


def test_a_missing_folder_is_skipped_but_not_all_of_them(tmp_path: Path) -> None:
    write(tmp_path / "base", "a.toml", GOOD)
    assert len(load_entries([tmp_path / "base", tmp_path / "absent"])) == 2
    with pytest.raises(ContentError, match="no knowledge-base folder"):
        load_entries([tmp_path / "absent"])
