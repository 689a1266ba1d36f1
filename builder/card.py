"""The share card: a 1200×630 PNG showing a gallery's title, its biggest tables and the mark.

Plain Python with Pillow (no browser, no Django). The build writes it to
``builds/<build-id>/card.png``; the gallery origin serves it as
``/_build/<build-id>/card.png`` and the app origin uses it for Open Graph and
Twitter cards, the front page and oEmbed thumbnails.

The gallery's app icons (``render_icon``: the square the web app manifest lists,
``builder.web_app_manifest``) are the card in small: its paper, its accent band and
the title's initials in its title font, so an installed gallery looks like its card.
``THEME_COLOR`` and ``BACKGROUND_COLOR`` are the card's accent and paper, for the
manifest and the pages' ``<meta name="theme-color">``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

#: Size of the card in pixels, the Open Graph / Twitter ``summary_large_image`` shape.
CARD_WIDTH = 1200
CARD_HEIGHT = 630
#: Tables listed on the card, biggest first.
MAX_TABLES = 4
#: Lines of title before it is ellipsised.
MAX_TITLE_LINES = 2

_MARGIN = 72
_INK = (29, 35, 48)
_MUTED = (91, 100, 117)
_ACCENT = (35, 88, 201)
_PAPER = (251, 252, 254)
_LINE = (217, 222, 231)

#: The card's colours as CSS hex (``#rrggbb``): the accent band, and the paper behind everything.
THEME_COLOR = "#{:02x}{:02x}{:02x}".format(*_ACCENT)
BACKGROUND_COLOR = "#{:02x}{:02x}{:02x}".format(*_PAPER)
#: Debian's fonts-dejavu-core; wide Unicode coverage. Pillow's own font is the fallback.
_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _font(size: int, bold: bool = False) -> Font:
    """DejaVu Sans (bold) at ``size`` px if installed, else Pillow's bundled default font."""
    path = _DEJAVU / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    try:
        return ImageFont.truetype(str(path), size)
    except OSError:
        return ImageFont.load_default(size)


def _width(draw: ImageDraw.ImageDraw, text: str, font: Font) -> float:
    return draw.textlength(text, font=font)


def _ellipsise(draw: ImageDraw.ImageDraw, text: str, font: Font, max_width: float) -> str:
    """``text`` cut to fit ``max_width`` px, ending in "…" when cut."""
    if _width(draw, text, font) <= max_width:
        return text
    while text and _width(draw, text.rstrip() + "…", font) > max_width:
        text = text[:-1]
    return text.rstrip() + "…"


def wrap_title(draw: ImageDraw.ImageDraw, title: str, font: Font, max_width: float, max_lines: int) -> list[str]:
    """Break ``title`` into at most ``max_lines`` lines of at most ``max_width`` px.

    Breaks at spaces; a word wider than a line (or a title without spaces, as in
    Chinese) is broken between characters. The last line ends in "…" if text is left over.
    """
    words = " ".join(title.split()).split(" ")
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if _width(draw, candidate, font) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while _width(draw, current, font) > max_width and len(current) > 1:
            cut = len(current)
            while cut > 1 and _width(draw, current[:cut], font) > max_width:
                cut -= 1
            lines.append(current[:cut])
            current = current[cut:]
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        kept = lines[:max_lines]
        kept[-1] = _ellipsise(draw, kept[-1] + " " + lines[max_lines], font, max_width)
        return kept
    return lines or [""]


def render_card(title: str, tables: Sequence[dict[str, Any]], out_path: Path) -> Path:
    """Write the share card PNG (``CARD_WIDTH``×``CARD_HEIGHT`` px) to ``out_path`` and return it.

    ``tables`` has the shape of ``builder.tables.describe_tables``
    (``[{"name": str, "rows": int, ...}]``); the ``MAX_TABLES`` with the most rows are
    listed with their row counts. Any Unicode title is accepted (characters the
    font lacks draw as boxes); long titles wrap onto ``MAX_TITLE_LINES`` lines and
    end in "…". Raises ``OSError`` if ``out_path`` cannot be written.
    """
    image = Image.new("RGB", (CARD_WIDTH, CARD_HEIGHT), _PAPER)
    draw = ImageDraw.Draw(image)
    inner = CARD_WIDTH - 2 * _MARGIN

    draw.rectangle((0, 0, CARD_WIDTH, 14), fill=_ACCENT)
    title_font = _font(64, bold=True)
    y = _MARGIN
    for line in wrap_title(draw, title.strip() or "Untitled gallery", title_font, inner, MAX_TITLE_LINES):
        draw.text((_MARGIN, y), line, font=title_font, fill=_INK)
        y += 80
    y += 24
    draw.line((_MARGIN, y, CARD_WIDTH - _MARGIN, y), fill=_LINE, width=2)
    y += 28

    body = _font(34)
    count_font = _font(34, bold=True)
    biggest = sorted(tables, key=lambda table: (-int(table.get("rows", 0)), str(table.get("name", ""))))
    shown = biggest[:MAX_TABLES]
    for table in shown:
        count = f"{int(table.get('rows', 0)):,} rows"
        count_width = _width(draw, count, count_font)
        name = _ellipsise(draw, str(table.get("name", "")), body, inner - count_width - 40)
        draw.text((_MARGIN, y), name, font=body, fill=_INK)
        draw.text((CARD_WIDTH - _MARGIN - count_width, y), count, font=count_font, fill=_MUTED)
        y += 48
    if not shown:
        draw.text((_MARGIN, y), "No tables", font=body, fill=_MUTED)
    footnote = "Runs in your browser"
    if len(biggest) > len(shown):
        more = len(biggest) - len(shown)
        footnote = f"and {more} more table{'s' if more != 1 else ''} · {footnote}"

    mark_font = _font(36, bold=True)
    mark = "Glasshouse"
    draw.text(
        (CARD_WIDTH - _MARGIN - _width(draw, mark, mark_font), CARD_HEIGHT - _MARGIN - 36),
        mark,
        font=mark_font,
        fill=_ACCENT,
    )
    draw.text((_MARGIN, CARD_HEIGHT - _MARGIN - 28), footnote, font=_font(26), fill=_MUTED)
    out_path = Path(out_path)
    image.save(out_path, format="PNG", optimize=True)
    return out_path


def title_initials(title: str) -> str:
    """Up to two initials of ``title`` for its icon, upper-cased: "Chinook music store" -> "CM".

    The first letter or digit of each of the first two words that have one; a title that starts
    with a wide character (Chinese, Japanese) gives that one character; a title with no letter or
    digit gives its first visible character, and an empty one "G" (for Glasshouse).
    """
    initials = ""
    for word in title.split():
        first = next((c for c in word if c.isalnum()), "")
        if not first:
            continue
        if unicodedata.east_asian_width(first) in ("W", "F"):
            return initials or first
        initials += first.upper()
        if len(initials) == 2:
            break
    return initials or next((c for c in title if c.isprintable() and not c.isspace()), "G")


def render_icon(title: str, size: int, out_path: Path) -> Path:
    """Write the gallery's ``size``×``size`` px app icon (PNG) to ``out_path`` and return it.

    The share card in small: its paper, its accent band along the top (in the card's proportion
    to the height) and ``title_initials(title)`` in the card's bold title font and ink, centred
    and sized to the square. Raises ``ValueError`` for a ``size`` under 16 and ``OSError`` if
    ``out_path`` cannot be written.
    """
    if size < 16:
        raise ValueError(f"an icon needs at least 16 px, not {size}")
    image = Image.new("RGB", (size, size), _PAPER)
    draw = ImageDraw.Draw(image)
    band = max(2, round(size * 14 / CARD_HEIGHT * 3))
    draw.rectangle((0, 0, size, band), fill=_ACCENT)
    text = title_initials(title.strip() or "Untitled gallery")
    # The largest font whose initials fit 70 % of the square's width and half its height.
    points = int(size * 0.5)
    font = _font(points, bold=True)
    while points > 8:
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        if right - left <= size * 0.7 and bottom - top <= size * 0.5:
            break
        points -= max(1, points // 16)
        font = _font(points, bold=True)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    middle = band + (size - band) / 2
    draw.text(((size - (right - left)) / 2 - left, middle - (bottom - top) / 2 - top), text, font=font, fill=_INK)
    rule = max(1, size // 64)
    width = size * 0.25
    y = middle + size * 0.25 + rule
    draw.rectangle(((size - width) / 2, y, (size + width) / 2, y + rule), fill=_ACCENT)
    out_path = Path(out_path)
    image.save(out_path, format="PNG", optimize=True)
    return out_path
