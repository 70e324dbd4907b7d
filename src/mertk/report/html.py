"""One document model rendered twice: a self-contained HTML page and Markdown.

A report is a list of :class:`Section` objects holding blocks (:class:`Text`, :class:`Table`,
:class:`Image`, :class:`Code`, :class:`Details`). :func:`render_html` embeds every image as a base64
``data:`` URI with inline CSS and no script or external resource; :func:`render_markdown` writes
the same tables and references each image as ``<files_dir>/<name>.png`` (the caller writes those
files). Rendering the same blocks both ways keeps the two reports' numbers identical.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from typing import Sequence, Union


@dataclass(frozen=True)
class Text:
    """A paragraph; ``kind`` ``note`` is set in a muted box, ``warn`` in a highlighted one."""

    text: str
    kind: str = "p"


@dataclass(frozen=True)
class Table:
    """A table of pre-formatted cells; ``numeric`` columns are right-aligned."""

    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    numeric: Sequence[int] = ()
    caption: str = ""


@dataclass(frozen=True)
class Image:
    """A PNG (``data`` bytes) called ``name`` (file stem in Markdown), shown at most ``width`` CSS px wide."""

    name: str
    data: bytes
    alt: str
    caption: str = ""
    width: int = 900


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Details:
    """Blocks folded under a summary line in HTML (``<details>``, no script); plain in Markdown."""

    summary: str
    blocks: Sequence["Block"]
    open: bool = False


Block = Union[Text, Table, Image, Code, Details]


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)


CSS = """
:root { --fg:#1d2330; --muted:#5b6474; --line:#d9dee7; --head:#f3f5f9; --accent:#2357a4; --warn:#fff6e0; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif;
       color:var(--fg); background:#fff; }
main { max-width:1080px; margin:0 auto; padding:28px 32px 60px; }
header.top { border-bottom:2px solid var(--accent); margin-bottom:18px; padding-bottom:10px; }
h1 { font-size:26px; margin:0 0 6px; }
h2 { font-size:19px; margin:34px 0 10px; padding-bottom:4px; border-bottom:1px solid var(--line); }
.meta { color:var(--muted); font-size:14px; }
.meta span { margin-right:14px; white-space:nowrap; display:inline-block; }
nav.toc { font-size:13.5px; margin:12px 0 4px; line-height:1.9; }
nav.toc a { color:var(--accent); text-decoration:none; margin-right:14px; white-space:nowrap; }
table { border-collapse:collapse; margin:8px 0 14px; font-size:14px; }
p.cap { color:var(--muted); font-size:13px; margin:10px 0 2px; }
th, td { border:1px solid var(--line); padding:4px 10px; text-align:left; vertical-align:top; }
th { background:var(--head); font-weight:600; }
table.wide { font-size:12.5px; }
table.wide th, table.wide td { padding:3px 6px; }
td.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
tbody tr:nth-child(even) td { background:#fafbfd; }
figure { margin:10px 0 18px; }
figure img { display:block; max-width:100%; height:auto; border:1px solid var(--line); }
figcaption { color:var(--muted); font-size:13px; margin-top:4px; max-width:900px; }
pre { background:#f6f8fa; border:1px solid var(--line); padding:10px 12px; overflow-x:auto; font-size:13px;
      line-height:1.4; white-space:pre-wrap; word-break:break-all; }
p.note { color:var(--muted); font-size:13.5px; }
p.warn { background:var(--warn); border-left:4px solid #d99a00; padding:6px 10px; }
details { margin:6px 0 12px; }
summary { cursor:pointer; color:var(--accent); }
"""


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


def png_data_uri(data: bytes) -> str:
    """``data:image/png;base64,...`` of PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _html_block(block: Block) -> str:
    if isinstance(block, Text):
        cls = f' class="{block.kind}"' if block.kind != "p" else ""
        return f"<p{cls}>{_e(block.text)}</p>"
    if isinstance(block, Table):
        cap = f'<p class="cap">{_e(block.caption)}</p>' if block.caption else ""
        head = "".join(f"<th>{_e(h)}</th>" for h in block.headers)
        body = "".join(
            "<tr>" + "".join(f'<td class="num">{_e(c)}</td>' if i in block.numeric else f"<td>{_e(c)}</td>"
                             for i, c in enumerate(row)) + "</tr>"
            for row in block.rows)
        wide = ' class="wide"' if len(block.headers) > 8 else ""
        return f"{cap}<table{wide}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(block, Image):
        cap = f"<figcaption>{_e(block.caption)}</figcaption>" if block.caption else ""
        return (f'<figure><img src="{png_data_uri(block.data)}" alt="{_e(block.alt)}" '
                f'style="width:{block.width}px"/>{cap}</figure>')
    if isinstance(block, Code):
        return f"<pre><code>{_e(block.text)}</code></pre>"
    if isinstance(block, Details):
        inner = "".join(_html_block(b) for b in block.blocks)
        return f"<details{' open' if block.open else ''}><summary>{_e(block.summary)}</summary>{inner}</details>"
    raise TypeError(f"unknown block {type(block).__name__}")


def render_html(title: str, meta: Sequence[tuple[str, str]], sections: Sequence[Section]) -> str:
    """The whole page: title, metadata line, table of contents and the sections."""
    meta_html = " ".join(f"<span><b>{_e(k)}</b> {_e(v)}</span>" for k, v in meta)
    toc = " ".join(f'<a href="#{_e(s.id)}">{_e(s.title)}</a>' for s in sections)
    body = "".join(
        f'<section id="{_e(s.id)}"><h2>{_e(s.title)}</h2>' + "".join(_html_block(b) for b in s.blocks) + "</section>"
        for s in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"/>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"/><title>{_e(title)}</title>'
            f"<style>{CSS}</style></head><body><main>"
            f'<header class="top"><h1>{_e(title)}</h1><div class="meta">{meta_html}</div>'
            f'<nav class="toc">{toc}</nav></header>{body}</main></body></html>\n')


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_block(block: Block, files_dir: str) -> str:
    if isinstance(block, Text):
        return f"> {block.text}" if block.kind in ("note", "warn") else block.text
    if isinstance(block, Table):
        align = ["---:" if i in block.numeric else "---" for i in range(len(block.headers))]
        lines = ([f"*{_md_cell(block.caption)}*", ""] if block.caption else []) + [
            "| " + " | ".join(_md_cell(h) for h in block.headers) + " |",
            "| " + " | ".join(align) + " |",
        ] + ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        return "\n".join(lines)
    if isinstance(block, Image):
        text = f"![{_md_cell(block.alt)}]({files_dir}/{block.name}.png)"
        return text + (f"\n\n*{block.caption}*" if block.caption else "")
    if isinstance(block, Code):
        return f"```\n{block.text}\n```"
    if isinstance(block, Details):
        return f"**{block.summary}**\n\n" + "\n\n".join(_md_block(b, files_dir) for b in block.blocks)
    raise TypeError(f"unknown block {type(block).__name__}")


def render_markdown(title: str, meta: Sequence[tuple[str, str]], sections: Sequence[Section], *,
                    files_dir: str = "report_files") -> str:
    """The report as Markdown; images are ``files_dir/<name>.png`` relative links."""
    parts = [f"# {title}", "", " · ".join(f"**{k}** {v}" for k, v in meta), ""]
    for s in sections:
        parts += [f"## {s.title}", ""]
        for b in s.blocks:
            parts += [_md_block(b, files_dir), ""]
    return "\n".join(parts).rstrip() + "\n"


def iter_images(blocks: Sequence[Block]):
    """Every :class:`Image` among ``blocks`` (inside :class:`Details` too)."""
    for b in blocks:
        if isinstance(b, Image):
            yield b
        elif isinstance(b, Details):
            yield from iter_images(b.blocks)
