"""Form definitions are content: checked when loaded, and a union adds a form without code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config import PROJECT_ROOT, ConfigError
from bot.errors import ContentError
from handlers.app import init_app
from handlers.forms import load_forms
from tests.conftest import make_config
from tests.forms.chat import Client, mp_click, mp_say, number_in, say

CUSTOM = """
id = "cooling"
title = "送清凉领取登记"
prefix = "凉"
keywords = ["领清凉", "送清凉登记"]
menu_title = "送清凉领取"
submitted = "请凭编号到工会服务站领取。"

[[fields]]
name = "name"
label = "姓名"
type = "text"
prompt = "请问您的姓名？"

[[fields]]
name = "pickup_day"
label = "领取日期"
type = "date"
future = true
prompt = "哪天来领？例如：明天"
"""


def write_form(folder: Path, text: str, name: str = "custom.toml") -> Path:
    (folder / "forms").mkdir(parents=True, exist_ok=True)
    path = folder / "forms" / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_built_in_forms_load() -> None:
    registry = load_forms([PROJECT_ROOT / "content"])
    assert {f.id: f.prefix for f in registry.forms.values()} == {
        "enrolment": "会",
        "legal_aid": "法",
        "medicine": "药",
        "service": "服",
    }
    assert registry.by_keyword("我要买药") is registry.get("medicine")
    assert registry.by_menu_key("FORM_LEGAL_AID") is registry.get("legal_aid")
    occupation = registry.forms["enrolment"].field("occupation")
    assert {"货车司机", "网约车司机", "快递员", "外卖配送员"} <= set(occupation.options)


async def test_a_union_adds_a_form_without_code(
    aiohttp_client: Any, db_url: str, tmp_path: Path
) -> None:
    write_form(tmp_path, CUSTOM)
    config = make_config(db_url, bot__content_dirs=[str(PROJECT_ROOT / "content"), str(tmp_path)])
    client: Client = await aiohttp_client(init_app(config))
    menu = await say(client, "菜单")
    line = next(x for x in menu.splitlines() if x.endswith("送清凉领取"))
    assert "请问您的姓名" in await say(client, line.split(".")[0])
    assert "哪天来领" in await say(client, "张三")
    assert "已经过了" in await say(client, "2020-01-01")
    assert "领取日期：" in await say(client, "明天")
    done = await say(client, "确认")
    assert number_in(done).startswith("凉-") and "服务站领取" in done
    assert "请问您的姓名" in await say(client, "领清凉", user="other")


async def test_a_later_content_folder_replaces_a_built_in_form(tmp_path: Path) -> None:
    text = (PROJECT_ROOT / "content" / "forms" / "medicine.toml").read_text(encoding="utf-8")
    write_form(tmp_path, text.replace("一般24小时内送到", "一般12小时内送到"), "medicine.toml")
    registry = load_forms([PROJECT_ROOT / "content", tmp_path])
    assert "12小时" in registry.forms["medicine"].intro


async def test_a_menu_click_starts_the_form(client: Client) -> None:
    assert "您要申请哪项服务" in await mp_click(client, "FORM_SERVICE", user="o_click")
    # A click on another form's key in the middle of a form switches to it.
    assert "免费法律援助" in await mp_click(client, "FORM_LEGAL_AID", user="o_click")
    assert "遇到的是哪类问题" in await mp_say(client, "王五", user="o_click")


BASE = 'id = "x"\ntitle = "X"\nprefix = "X"\n'
FIELD = '[[fields]]\nname = "a"\nlabel = "A"\ntype = "text"\nprompt = "A?"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE + FIELD.replace('"text"', '"colour"'), "type must be one of"),
        (BASE + FIELD + "colour = 1\n", "unknown key 'colour'"),
        (BASE + FIELD + 'optional = "yes"\n', "optional has the wrong type"),
        (BASE + FIELD.replace('"text"', '"choice"'), "needs options"),
        (BASE + FIELD + 'when = "b == 1"\n' + FIELD.replace('"a"', '"b"'), "refers to 'b'"),
        (BASE + FIELD + 'when = "a =="\n', "not a valid expression"),
        (BASE + FIELD.replace('"A?"', '"{{ a"'), "not a valid template"),
        (BASE + 'export = ["phone"]\n' + FIELD, "export column 'phone'"),
        (BASE.replace('prefix = "X"', 'prefix = "XXXXX"') + FIELD, "at most 4 characters"),
        (BASE, "[[fields]] must be a list"),
        ('title = "X"\n' + FIELD, "id is required"),
        ("id = ", "not valid TOML"),
    ],
)
def test_broken_definitions_name_the_file_and_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write_form(tmp_path, text, "broken.toml")
    with pytest.raises(ContentError) as error:
        load_forms([tmp_path])
    assert str(path) in str(error.value) and message in str(error.value)


def test_two_forms_may_not_share_a_start_word(tmp_path: Path) -> None:
    write_form(tmp_path, CUSTOM.replace('"领清凉"', '"我要买药"'))
    with pytest.raises(ContentError, match="我要买药"):
        load_forms([PROJECT_ROOT / "content", tmp_path])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"forms__digest_time": "8pm"}, "forms.digest_time"),
        ({"forms__digest_time": "24:00"}, "forms.digest_time"),
        ({"forms__reminder_minutes": 0}, "forms.reminder_minutes"),
        ({"forms__expire_minutes": 10}, "forms.expire_minutes"),
    ],
)
def test_wrong_forms_settings_name_the_key(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_config("sqlite+aiosqlite:///:memory:", **overrides)
