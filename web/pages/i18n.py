"""The pages' language: which one a request asks for, and numbers, dates and names in it.

Numbers, dates and country names come from Babel's CLDR data; the words of the pages and the names of
dimensions and their values from `web.pages.messages`; indicator names from the catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache

from aiohttp import web
from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, format_percent

from processors.indicators import catalogue
from web.pages.messages import DIMENSION_VALUES, DIMENSIONS, MESSAGES

LANGUAGES = ("es", "pt", "en")
# Babel's locale per language: Portuguese as written in Brazil, the largest Portuguese-speaking member.
_LOCALES = {"es": "es", "pt": "pt_BR", "en": "en"}


def language(request: web.Request) -> str:
    """`?lang=`, else the first of `Accept-Language` alcance speaks, else Spanish."""
    asked = request.query.get("lang", "")
    if asked in LANGUAGES:
        return asked
    for item in request.headers.get("Accept-Language", "").split(","):
        code = item.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "es"


@cache
def _locale(lang: str) -> Locale:
    return Locale.parse(_LOCALES[lang])


@dataclass(frozen=True)
class Speaker:
    """Words, names, numbers and dates in one language."""

    lang: str

    def __call__(self, key: str) -> str:
        """The page text `key` in this language."""
        return MESSAGES[key][LANGUAGES.index(self.lang)]

    def indicator(self, indicator_id: str) -> str:
        """An indicator's display name."""
        return catalogue.get(indicator_id).names[self.lang]

    def dimension(self, name: str) -> str:
        """A dimension's display name (`country` -> `País`)."""
        names = DIMENSIONS.get(name)
        return names[LANGUAGES.index(self.lang)] if names else name

    def value_of(self, dimension: str, value: str) -> str:
        """A dimension value's display name: countries by CLDR, audiences and the like by table."""
        if dimension in ("country", "counterpart_country", "recipient") and len(value) == 2:
            territory = _locale(self.lang).territories.get(value)
            if territory:
                return str(territory)
        names = DIMENSION_VALUES.get(value)
        return names[LANGUAGES.index(self.lang)] if names else value

    def number(self, value: float | Decimal, digits: int = 0) -> str:
        """A number with this language's separators and at most `digits` decimals."""
        pattern = "#,##0" + ("." + "#" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=_locale(self.lang))

    def percent(self, ratio: float | Decimal) -> str:
        """A ratio (0.25) as a percentage (25 %, 25%)."""
        return format_percent(ratio, format="#,##0.0%", locale=_locale(self.lang))

    def money(self, usd: float | Decimal) -> str:
        """US dollars, without cents."""
        return format_currency(usd, "USD", format="¤#,##0", locale=_locale(self.lang), currency_digits=False)

    def day(self, value: date | datetime) -> str:
        """A date in this language's medium form."""
        return format_date(value, format="medium", locale=_locale(self.lang))

    def month(self, value: date) -> str:
        """A month and year (`mar 2026`)."""
        return format_date(value, format="MMM y", locale=_locale(self.lang))

    def moment(self, value: datetime) -> str:
        """A date and time in this language's short form."""
        return format_datetime(value, format="short", locale=_locale(self.lang))
