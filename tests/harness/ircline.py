"""Parsing of IRC lines as a client sees them (IRCv3 tags, source, params).

Kept independent of any IRC library so that the raw-socket tests check the
bytes the gateway really sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_TAG_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


def unescape_tag_value(value: str) -> str:
    """Reverses IRCv3 tag value escaping (`\\s` → space, `\\:` → `;`, …)."""
    out = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            out.append(_TAG_UNESCAPES.get(value[i + 1], value[i + 1]))
            i += 2
        elif ch == "\\":
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


@dataclass
class Line:
    """One line received from the server, parsed.

    `n` is the line's position in the connection's stream (1 for the first
    line), so tests can assert the relative order of lines they picked out.
    """

    raw: str
    n: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    source: str | None = None
    command: str = ""
    params: list[str] = field(default_factory=list)

    @property
    def nick(self) -> str | None:
        """The nick part of the source (`alice` in `alice!~a@host`)."""
        if self.source is None:
            return None
        return self.source.split("!", 1)[0]

    @property
    def text(self) -> str | None:
        """The last parameter (a message's text, a numeric's description)."""
        return self.params[-1] if self.params else None

    def __str__(self) -> str:
        return self.raw


def parse(raw: str, n: int = 0) -> Line:
    """Parses one line (without its CR LF). Never raises: a line it cannot
    make sense of comes back with an empty command."""
    line = Line(raw=raw, n=n)
    rest = raw
    if rest.startswith("@"):
        tags, _, rest = rest[1:].partition(" ")
        for item in tags.split(";"):
            if not item:
                continue
            key, _, value = item.partition("=")
            line.tags[key] = unescape_tag_value(value)
        rest = rest.lstrip(" ")
    if rest.startswith(":"):
        line.source, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
    while rest:
        if rest.startswith(":"):
            line.params.append(rest[1:])
            break
        word, _, rest = rest.partition(" ")
        rest = rest.lstrip(" ")
        if not line.command:
            line.command = word.upper()
        else:
            line.params.append(word)
    return line
