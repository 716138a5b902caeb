"""Official Account sample messages from WeChat's documentation, as WeChat sends them: every
kind gets a 200 with a polite reply or ``success``, never an error, and nested elements
(scan results, photo lists, picked locations, mass-send reports) do not trip the parser."""

from __future__ import annotations

from typing import Any

import pytest
import xmltodict
from aiohttp.test_utils import TestClient

from tests.support import wechat

Client = TestClient[Any, Any]

HEAD = (
    "<xml><ToUserName><![CDATA[wx_test_app]]></ToUserName>"
    "<FromUserName><![CDATA[o_sample]]></FromUserName><CreateTime>{t}</CreateTime>"
)

MESSAGES = {
    "image": "<MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[http://example.invalid/p.jpg]]>"
    "</PicUrl><MediaId><![CDATA[media_id]]></MediaId><MsgId>1234567890123401</MsgId>",
    "video": "<MsgType><![CDATA[video]]></MsgType><MediaId><![CDATA[media_id]]></MediaId>"
    "<ThumbMediaId><![CDATA[thumb_media_id]]></ThumbMediaId><MsgId>1234567890123402</MsgId>",
    "shortvideo": "<MsgType><![CDATA[shortvideo]]></MsgType><MediaId><![CDATA[media_id]]>"
    "</MediaId><ThumbMediaId><![CDATA[thumb_media_id]]></ThumbMediaId>"
    "<MsgId>1234567890123403</MsgId>",
    "location": "<MsgType><![CDATA[location]]></MsgType><Location_X>23.134521</Location_X>"
    "<Location_Y>113.358803</Location_Y><Scale>20</Scale><Label><![CDATA[位置信息]]></Label>"
    "<MsgId>1234567890123404</MsgId>",
    "link": "<MsgType><![CDATA[link]]></MsgType><Title><![CDATA[公众平台官网链接]]></Title>"
    "<Description><![CDATA[公众平台官网链接]]></Description>"
    "<Url><![CDATA[http://example.invalid/]]></Url><MsgId>1234567890123405</MsgId>",
    "voice without recognition": "<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[m]]>"
    "</MediaId><Format><![CDATA[amr]]></Format><MsgId>1234567890123406</MsgId>",
}

EVENTS = {
    "SCAN": "<Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[123123]]></EventKey>"
    "<Ticket><![CDATA[TICKET]]></Ticket>",
    "subscribe with ticket": "<Event><![CDATA[subscribe]]></Event>"
    "<EventKey><![CDATA[qrscene_123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>",
    "scancode_push": "<Event><![CDATA[scancode_push]]></Event><EventKey><![CDATA[6]]></EventKey>"
    "<ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType>"
    "<ScanResult><![CDATA[1]]></ScanResult></ScanCodeInfo>",
    "scancode_waitmsg": "<Event><![CDATA[scancode_waitmsg]]></Event>"
    "<EventKey><![CDATA[6]]></EventKey><ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType>"
    "<ScanResult><![CDATA[2]]></ScanResult></ScanCodeInfo>",
    "pic_sysphoto": "<Event><![CDATA[pic_sysphoto]]></Event><EventKey><![CDATA[6]]></EventKey>"
    "<SendPicsInfo><Count>1</Count><PicList><item><PicMd5Sum>"
    "<![CDATA[1b5f7c23b5bf75682a53e7b6d163e185]]></PicMd5Sum></item></PicList></SendPicsInfo>",
    "pic_weixin two pictures": "<Event><![CDATA[pic_weixin]]></Event>"
    "<EventKey><![CDATA[6]]></EventKey><SendPicsInfo><Count>2</Count><PicList>"
    "<item><PicMd5Sum><![CDATA[a]]></PicMd5Sum></item>"
    "<item><PicMd5Sum><![CDATA[b]]></PicMd5Sum></item></PicList></SendPicsInfo>",
    "location_select": "<Event><![CDATA[location_select]]></Event>"
    "<EventKey><![CDATA[6]]></EventKey><SendLocationInfo><Location_X><![CDATA[23]]>"
    "</Location_X><Location_Y><![CDATA[113]]></Location_Y><Scale><![CDATA[15]]></Scale>"
    "<Label><![CDATA[ 广州市海珠区客村艺苑路 106号]]></Label><Poiname><![CDATA[]]></Poiname>"
    "</SendLocationInfo>",
    "MASSSENDJOBFINISH": "<Event><![CDATA[MASSSENDJOBFINISH]]></Event><MsgID>1000001625</MsgID>"
    "<Status><![CDATA[err(30003)]]></Status><TotalCount>0</TotalCount>"
    "<FilterCount>0</FilterCount><SentCount>0</SentCount><ErrorCount>0</ErrorCount>"
    "<CopyrightCheckResult><Count>2</Count><ResultList><item><ArticleIdx>1</ArticleIdx>"
    "<UserDeclareState>0</UserDeclareState><AuditState>2</AuditState>"
    "<OriginalArticleUrl><![CDATA[Url_1]]></OriginalArticleUrl><OriginalArticleType>1"
    "</OriginalArticleType><CanReprint>1</CanReprint><NeedReplaceContent>1"
    "</NeedReplaceContent><NeedShowReprintSource>1</NeedShowReprintSource></item>"
    "</ResultList><CheckState>2</CheckState></CopyrightCheckResult>",
    "view_miniprogram": "<Event><![CDATA[view_miniprogram]]></Event>"
    "<EventKey><![CDATA[pages/index/index]]></EventKey><MenuId>MENUID</MenuId>",
}


async def _post(client: Client, xml: str) -> tuple[int, str]:
    signed = wechat.mp_plain("/wechat/mp", xml)
    resp = await client.post(signed.path, data=signed.body)
    return resp.status, await resp.text()


@pytest.mark.parametrize("kind", list(MESSAGES))
async def test_sample_message_gets_a_polite_text_reply(client: Client, kind: str) -> None:
    status, body = await _post(client, HEAD.format(t=1357290913) + MESSAGES[kind] + "</xml>")
    assert status == 200, body
    reply = xmltodict.parse(body)["xml"]
    assert reply["ToUserName"] == "o_sample"
    assert reply["MsgType"] == "text" and reply["Content"].strip()


@pytest.mark.parametrize("kind", list(EVENTS))
async def test_sample_event_is_taken_without_an_error(client: Client, kind: str) -> None:
    xml = HEAD.format(t=1357290914) + "<MsgType><![CDATA[event]]></MsgType>" + EVENTS[kind]
    status, body = await _post(client, xml + "</xml>")
    assert status == 200, body
    if body != "success":
        assert xmltodict.parse(body)["xml"]["Content"].strip()


async def test_an_event_wechat_adds_later_is_acknowledged_without_a_reply(client: Client) -> None:
    # Nobody wrote anything: a reply would come out of nowhere for the worker.
    xml = (
        HEAD.format(t=1357290915)
        + "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[some_new_event]]></Event></xml>"
    )
    assert await _post(client, xml) == (200, "success")
