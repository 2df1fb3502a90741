"""A printable binding card: the QR code of a binding ticket with a Chinese caption (site,
account, role, valid until), as PNG or PDF, for staff to hand to a tenant.

The caption needs a CJK font: the first one fontconfig knows for Chinese (`fc-list
:lang=zh`), else a known file (WenQuanYi, Noto CJK, Source Han). `./run` installs
fonts-wqy-microhei when there is none. Without any, the caption is written without the
Chinese words (ASCII labels) and `CardImage.font` is None, so the caller can say so.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw, ImageFont

KNOWN_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/opentype/source-han-sans/SourceHanSansSC-Regular.otf",
)
ROLE_NAMES = {"owner": "户主", "accountant": "财务"}


def cjk_font() -> Path | None:
    """A font file that has Chinese glyphs, or None."""
    if shutil.which("fc-list"):
        listed = subprocess.run(
            ["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=10
        ).stdout
        files = sorted(line.split(":")[0].strip() for line in listed.splitlines() if line)
        regular = [f for f in files if "Regular" in f or "microhei" in f or "zenhei" in f]
        for name in regular + files:
            if Path(name).is_file():
                return Path(name)
    return next((Path(p) for p in KNOWN_FONTS if Path(p).is_file()), None)


@dataclass(frozen=True, slots=True)
class CardImage:
    image: Image.Image
    font: Path | None


def binding_card(
    token: str, *, site: str, number: str, tenant_name: str, role: str, expires_at: datetime
) -> CardImage:
    """The card as an RGB image: QR on top, four caption lines below."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10, border=4)
    qr.add_data(token)
    qr.make(fit=True)
    code = qr.make_image(fill_color="black", back_color="white").get_image().convert("RGB")
    font_file = cjk_font()
    until = expires_at.strftime("%Y-%m-%d %H:%M")
    if font_file is not None:
        lines = [f"园区：{site}", f"户号：{number}  {tenant_name}",
                 f"绑定身份：{ROLE_NAMES.get(role, role)}", f"有效期至：{until}",
                 "微信小程序「绑定」页扫码，一码一用"]  # fmt: skip
        font: ImageFont.FreeTypeFont | ImageFont.ImageFont = ImageFont.truetype(str(font_file), 26)
    else:
        lines = ["Shuidian binding code", f"Account: {number}", f"Role: {role}",
                 f"Valid until: {until}"]  # fmt: skip
        font = ImageFont.load_default()
    line_h = 40
    width = max(code.width, 560)
    card = Image.new("RGB", (width, code.height + line_h * len(lines) + 30), "white")
    card.paste(code, ((width - code.width) // 2, 0))
    draw = ImageDraw.Draw(card)
    for n, text in enumerate(lines):
        draw.text((30, code.height + 10 + n * line_h), text, fill="black", font=font)
    return CardImage(card, font_file)


def save_card(card: CardImage, out: Path) -> None:
    """PNG or PDF, by the file's suffix."""
    suffix = out.suffix.lower()
    if suffix not in (".png", ".pdf"):
        raise ValueError("--out must end in .png or .pdf")
    out.parent.mkdir(parents=True, exist_ok=True)
    card.image.save(out, "PDF" if suffix == ".pdf" else "PNG", resolution=150.0)
