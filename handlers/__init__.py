"""What the bot knows how to do. ``build_dispatcher`` wires every handler router in priority
order and fills the main menu; each module exports one ``router``."""

from __future__ import annotations

from collections.abc import Sequence

from bot.dispatch import Dispatcher, Router
from bot.services import Services
from handlers import cases, feedback, forms, knowledge, menu, subscriptions


def build_menu() -> menu.Menu:
    main = menu.Menu()
    main.add("enrolment", "入会咨询", knowledge.enrolment_menu)
    main.add("legal", "劳动法律咨询（欠薪、工伤、合同）", knowledge.legal_menu)
    # ── forms (handlers.forms): filled in chat, handed to volunteers and cadres ──
    main.add(forms.menu_key("medicine"), "购药登记", forms.menu_action("medicine"))
    main.add(forms.menu_key("service"), "服务申请", forms.menu_action("service"))
    main.add(forms.menu_key("enrolment"), "申请入会", forms.menu_action("enrolment"))
    main.add(forms.menu_key("legal_aid"), "法律援助申请", forms.menu_action("legal_aid"))
    # ── end forms ──
    main.add("human", "转人工（工会工作人员）", cases.start_from_menu)
    main.add("feedback", "给工会留言", feedback.start)
    main.add("contact", "联系工会（热线电话）", menu.contact)
    main.add("subscriptions", "订阅通知", subscriptions.show)  # handlers.subscriptions
    return main


def build_dispatcher(services: Services, extra: Sequence[Router] = ()) -> Dispatcher:
    services.features["menu"] = build_menu()
    services.features[knowledge.FEATURE] = knowledge.load_kb(services.config.content_paths())
    cases.setup(services)
    forms.setup(services)  # after the menu: forms a union added join it
    dispatcher = Dispatcher()
    # An answer a cadre could not push is handed over with the worker's next reply.
    dispatcher.middleware(cases.deliver_inbox)
    for router in extra:
        dispatcher.include_router(router)
    # Cases first: 人工 and the cadres' commands must not be read as questions.
    dispatcher.include_router(cases.router)
    # Forms before the knowledge base: an answer inside a form is not a new question.
    dispatcher.include_router(forms.router)
    # Within a stage, earlier routers win: the knowledge base answers before the menu's
    # "not understood" fallback.
    dispatcher.include_router(knowledge.router)
    dispatcher.include_router(feedback.router)
    dispatcher.include_router(subscriptions.router)  # 订阅 / 退订 the scheduled pushes
    dispatcher.include_router(menu.router)
    return dispatcher
