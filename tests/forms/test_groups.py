"""Forms started in a group belong to the user who started them, in that group."""

from __future__ import annotations

import asyncio
from itertools import zip_longest

from tests.forms.chat import MEDICINE, Client, fill, group_mention, number_in, say


async def test_two_users_in_one_group_never_mix_answers(client: Client) -> None:
    await say(client, "我要买药", user="amy", chat="g-yard")
    await say(client, "我要买药", user="bob", chat="g-yard")
    bob_answers = ["李四", "5号楼101", "阿莫西林胶囊 0.25g", "1", "是", "有", "13700001111", "1"]
    amy = bob = ""
    # Answer by answer, each pair at the same moment (bob has one question more).
    for a, b in zip_longest(MEDICINE, [*bob_answers, "跳过"]):
        if a is None:
            bob = await say(client, b, user="bob", chat="g-yard")
            continue
        amy, bob = await asyncio.gather(
            say(client, a, user="amy", chat="g-yard"), say(client, b, user="bob", chat="g-yard")
        )
    assert "姓名：张三" in amy and "布洛芬" in amy and "李四" not in amy
    assert "姓名：李四" in bob and "阿莫西林" in bob and "已有处方：有" in bob
    # Everyone in the group reads these replies: the phone number is masked.
    assert "138****5678" in amy and "13812345678" not in amy
    numbers = await asyncio.gather(
        say(client, "确认", user="amy", chat="g-yard"),
        say(client, "确认", user="bob", chat="g-yard"),
    )
    assert len({number_in(n) for n in numbers}) == 2
    # The same user in a private chat or another group has no form going.
    assert "请核对" not in await say(client, "你好", user="amy")


async def test_a_form_started_by_mention_is_bound_to_that_user(client: Client) -> None:
    first = await group_mention(client, "我要买药", user="rider7", chat="g-drivers")
    assert "怎么称呼" in first
    # Another member @-mentions the bot in the same group: not read as rider7's name.
    other = await group_mention(client, "你好", user="rider8", chat="g-drivers")
    assert "请回复数字选择服务" in other
    assert "您住哪里" in await group_mention(client, "赵六", user="rider7", chat="g-drivers")
    # rider7 in a private chat with the bot is a different conversation.
    assert "您住哪里" not in await say(client, "3号楼", user="rider7")


async def test_group_members_each_see_their_own_requests(client: Client) -> None:
    await say(client, "买药", user="cat", chat="g-2")
    await fill(client, MEDICINE, user="cat", chat="g-2")
    number = number_in(await say(client, "确认", user="cat", chat="g-2"))
    assert number in await say(client, "我的申请", user="cat", chat="g-2")
    assert number not in await say(client, "我的申请", user="dog", chat="g-2")
