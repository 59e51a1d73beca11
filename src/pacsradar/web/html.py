"""Just enough HTML reading for fingerprints and login forms (stdlib parser, bounded input)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

MAX_HTML = 256 * 1024
_USER_HINTS = ("user", "login", "email", "name", "account", "uid", "j_username")


@dataclass
class LoginForm:
    """A form with one password field. Field *names* come from the peer: used, never reported."""

    action: str
    method: str
    user_field: str | None
    password_field: str
    hidden: dict[str, str] = field(default_factory=dict)


@dataclass
class _Form:
    action: str
    method: str
    inputs: list[dict[str, str]] = field(default_factory=list)


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: str | None = None
        self._in_title = False
        self._title_parts: list[str] = []
        self.forms: list[_Form] = []
        self._form: _Form | None = None
        self.password_inputs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): (v or "") for k, v in attrs}
        if tag == "title" and self.title is None:
            self._in_title = True
        elif tag == "form":
            self._form = _Form(values.get("action", ""), values.get("method", "get").lower())
            self.forms.append(self._form)
        elif tag == "input":
            if values.get("type", "text").lower() == "password":
                self.password_inputs += 1
            if self._form is not None and len(self._form.inputs) < 64:
                self._form.inputs.append(values)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._in_title:
            self._in_title = False
            self.title = "".join(self._title_parts).strip()
        elif tag == "form":
            self._form = None

    def handle_data(self, data: str) -> None:
        if self._in_title and sum(map(len, self._title_parts)) < 1024:
            self._title_parts.append(data)


@dataclass(frozen=True)
class Page:
    title: str | None
    has_password_input: bool
    login_form: LoginForm | None


def parse_page(body: bytes) -> Page:
    parser = _PageParser()
    try:
        parser.feed(body[:MAX_HTML].decode("utf-8", "replace"))
        parser.close()
    except (AssertionError, ValueError):  # html.parser on pathological input
        pass
    title = parser.title
    if title is None and parser._in_title:
        title = "".join(parser._title_parts).strip()
    return Page(title, parser.password_inputs > 0, _login_form(parser.forms))


def _login_form(forms: list[_Form]) -> LoginForm | None:
    for form in forms:
        passwords = [i for i in form.inputs if i.get("type", "text").lower() == "password"]
        if len(passwords) != 1 or not passwords[0].get("name"):
            continue  # none, or a change-password form
        user_field = None
        for i in form.inputs:
            kind = i.get("type", "text").lower()
            name = i.get("name", "")
            if kind not in ("text", "email", "") or not name:
                continue
            hinted = any(h in name.lower() for h in _USER_HINTS)
            if user_field is None or hinted:
                user_field = name
                if hinted:
                    break
        hidden = {
            i["name"]: i.get("value", "")
            for i in form.inputs
            if i.get("type", "").lower() == "hidden" and i.get("name")
        }
        return LoginForm(
            action=form.action,
            method=form.method if form.method in ("get", "post") else "post",
            user_field=user_field,
            password_field=passwords[0]["name"],
            hidden=hidden,
        )
    return None


__all__ = ["LoginForm", "Page", "parse_page"]
