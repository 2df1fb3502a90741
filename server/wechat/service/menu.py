"""The official account's menu (自定义菜单): server/wechat/menu.json, published with
`shuidian wechat menu` (WeChat's `menu/create`, through wechatpy).

menu.json is WeChat's own menu format (at most 3 buttons, 5 sub-buttons each):

- `click` buttons send a click event with their `key`; the chatbot answers each key as the
  command of the same meaning (server.wechat.service.bot.CLICKS: BALANCE 余额, USAGE 用电,
  BILLS 账单, BIND 绑定, INVOICE 发票, HELP 帮助, RECHARGE 充值);
- `scancode_waitmsg` (扫码绑定) opens WeChat's scanner and sends us what was scanned: a
  binding QR of `shuidian tenant qr` binds the follower, as in the mini-program;
- `miniprogram` (充值) opens the mini-program's recharge page; `url` is what clients too
  old for mini-programs open instead.

`{miniapp_appid}`, `{recharge_page}` and `{recharge_url}` are filled in from the settings
when publishing (server.wechat.config).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from server.wechat.config import OfficialSettings
from server.wechat.service.bot import CLICKS
from server.wechat.service.official import OfficialApi

MENU_FILE = Path(__file__).resolve().parent.parent / "menu.json"
SCAN_KEYS = {"BIND_SCAN"}


def load_menu(
    settings: OfficialSettings, miniapp_appid: str, path: Path = MENU_FILE
) -> dict[str, Any]:
    """The menu to publish, placeholders filled; ValueError naming what is wrong."""
    values = {
        "{miniapp_appid}": miniapp_appid,
        "{recharge_page}": settings.recharge_page,
        "{recharge_url}": settings.recharge_url,
    }
    menu = json.loads(path.read_text(encoding="utf-8"))
    buttons = menu.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        raise ValueError(f"{path}: a menu has 1 to 3 buttons")
    for button in buttons:
        subs = button.get("sub_button", [])
        if len(subs) > 5:
            raise ValueError(f"{path}: {button['name']} has more than 5 sub-buttons")
        for item in [button, *subs]:
            for name, value in list(item.items()):
                if isinstance(value, str) and value in values:
                    item[name] = values[value]
            key = item.get("key")
            if key is not None and key not in CLICKS and key not in SCAN_KEYS:
                raise ValueError(f"{path}: the chatbot does not know the key {key!r}")
    return menu


async def publish(api: OfficialApi, menu: dict[str, Any]) -> None:
    await api.create_menu(menu)
