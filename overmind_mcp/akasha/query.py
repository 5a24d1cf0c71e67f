"""Turn whatever a person or a model types into a safe FTS5 MATCH expression.

FTS5's query language is strict: a stray quote, `(`, `:`, `^`, `-` or a bare `NEAR`
is a syntax error, and a column name followed by a colon is a column filter. So user
text is never passed through. It is read with a small grammar of its own, and every
word or phrase is emitted as an FTS5 string (`"..."`, quotes doubled), inside which
all punctuation is just a token separator. Only the compiler writes operators.

The grammar, loosely what search boxes accept:

    "exact phrase"     words in this order (an unclosed quote runs to the end)
    prefix*            words starting with "prefix" (also "a phrase"*)
    -word, -"phrase"   exclude memories with it; `NOT word` does the same
    a OR b             either; binds tighter than the implicit AND between items
    AND                allowed between items and changes nothing

Operators are the upper-case words only; an operator with nothing to act on is
ignored. Anything else, punctuation and emoji included, is text: `node.js` is the
phrase "node js", `C++` is "c", and a word without a letter or a digit is dropped.
Common words ("how", "did", "the") are dropped from a query that has other words.

Each query compiles to two expressions: every item (`all_terms`), and any positive
term (`any_term`), which the store falls back to when nothing has them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from overmind_mcp.errors import InvalidRequest

MAX_TERMS = 64
"""Most words and phrases a query may hold; past that an AND of them matches nothing useful."""

# Words that carry no meaning on their own: required, they would exclude the memory that
# answers a question; optional, they would match nearly every memory and rank nothing.
STOPWORDS = frozenset(
    "a about above after again all also am an and any are as at be because been before being below between both but "
    "by can could did do does doing done down during each else few for from further get got had has have having he "
    "her here hers him his how i if in into is it its itself just let like me more most much must my no nor not now "
    "of off on once only or other our ours out over own please same she should so some such than that the their "
    "them then there these they this those through to too under until up upon us use used using very want was we "
    "were what when where which while who whom why will with would yes yet you your".split()
)


@dataclass(frozen=True, slots=True)
class Term:
    """A word or a phrase from the query, as the user meant it."""

    text: str
    phrase: bool = False
    prefix: bool = False

    @property
    def stopword(self) -> bool:
        return not (self.phrase or self.prefix) and self.text.casefold() in STOPWORDS

    def fts(self) -> str:
        # Inside an FTS5 string only `"` is special (doubled to escape); the tokenizer
        # turns every other non-word character into a separator.
        return '"' + self.text.replace('"', '""') + '"' + ("*" if self.prefix else "")


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    """Ready-to-bind MATCH expressions for one query."""

    all_terms: str
    """Every item must match (OR-groups count as one item); excluded terms must not."""
    any_term: str | None
    """At least one positive term must match; None when that is the same as `all_terms`."""


@dataclass(frozen=True, slots=True)
class _Operator:
    name: str


@dataclass(frozen=True, slots=True)
class _Item:
    term: Term
    negated: bool


_Token = _Operator | _Item
_OPERATORS = frozenset({"AND", "OR", "NOT"})


def compile_query(text: str) -> CompiledQuery:
    """The query as FTS5 MATCH expressions; raises InvalidRequest when it has nothing to look for."""
    tokens = _lex(text)
    groups: list[list[Term]] = []
    excluded: list[Term] = []
    negate_next = join_next = after_positive = False
    for index, token in enumerate(tokens):
        after = tokens[index + 1] if index + 1 < len(tokens) else None
        if isinstance(token, _Operator):
            if token.name == "NOT" and isinstance(after, _Item):
                negate_next = True
            elif token.name == "OR" and after_positive and isinstance(after, _Item) and not after.negated:
                join_next = True
            # AND is what juxtaposition means already; an operator with no operand is ignored.
            after_positive = False
            continue
        if token.negated or negate_next:
            excluded.append(token.term)
            after_positive = False
        else:
            if join_next:
                groups[-1].append(token.term)
            else:
                groups.append([token.term])
            after_positive = True
        negate_next = join_next = False

    terms = [term for group in groups for term in group]
    if len(terms) + len(excluded) > MAX_TERMS:
        raise InvalidRequest(
            f"the query has {len(terms) + len(excluded)} words and phrases; use at most {MAX_TERMS}: "
            "the few that a matching memory would surely contain"
        )
    if not terms:
        if excluded:
            raise InvalidRequest(
                "the query only excludes (-word or NOT word); add a word to look for, "
                "or leave the query out to list recent memories"
            )
        raise InvalidRequest(
            f"the query {_abbreviate(text)!r} has nothing to search for (no word with a letter or a digit); "
            "leave it out to list recent memories"
        )

    # Models write questions ("how did we fix the flaky test"): requiring "how", "did" and
    # "we" as well would miss the memory that answers it. Stopwords count only when alone.
    groups = [group for group in groups if len(group) > 1 or not group[0].stopword] or groups
    all_terms = " AND ".join(_any_of(group) for group in groups)
    if len(groups) > 1 and excluded:
        all_terms = f"({all_terms})"
    any_term = None
    if len(groups) > 1:
        any_term = _with_exclusions(_any_of([term for group in groups for term in group]), excluded)
    all_terms = _with_exclusions(all_terms, excluded)
    return CompiledQuery(all_terms=all_terms, any_term=any_term)


def keywords_query(text: str, max_terms: int = 24) -> str | None:
    """An any-word expression for free text such as a task prompt: its first distinct content words.

    None when the text has no word worth searching for.
    """
    seen: dict[str, Term] = {}
    for word in _words(text):
        folded = word.casefold()
        if len(folded) < 3 or folded in STOPWORDS or folded.isdigit() or folded in seen:
            continue
        seen[folded] = Term(word)
        if len(seen) == max_terms:
            break
    return _any_of(list(seen.values())) if seen else None


def _lex(text: str) -> list[_Token]:
    # Control characters (NUL above all: FTS5 reads it as the end of the string) are spaces here.
    text = "".join(" " if ch < " " or ch == "\x7f" else ch for ch in text)
    tokens: list[_Token] = []
    position, end = 0, len(text)
    while position < end:
        if text[position].isspace():
            position += 1
            continue
        negated = text[position] == "-" and position + 1 < end and not text[position + 1].isspace()
        if negated:
            position += 1
        if text[position] == '"':
            close = text.find('"', position + 1)
            close = end if close < 0 else close
            body = text[position + 1 : close]
            position = close + 1
            prefix = position < end and text[position] == "*"
            while position < end and text[position] == "*":
                position += 1
            if _has_word(body):
                tokens.append(_Item(Term(" ".join(body.split()), phrase=True, prefix=prefix), negated))
            continue
        start = position
        while position < end and not text[position].isspace() and text[position] != '"':
            position += 1
        word = text[start:position]
        if word in _OPERATORS and not negated:
            tokens.append(_Operator(word))
            continue
        stem = word.rstrip("*")
        if _has_word(stem):
            tokens.append(_Item(Term(stem, prefix=stem != word), negated))
    return tokens


def _words(text: str) -> list[str]:
    """Runs of letters and digits, the way the unicode61 tokenizer splits text."""
    words: list[str] = []
    current: list[str] = []
    for ch in text:
        if ch.isalnum():
            current.append(ch)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return words


def _has_word(text: str) -> bool:
    # A string the tokenizer reads as no token at all would match nothing, and turn
    # an AND of otherwise good terms into no hits.
    return any(ch.isalnum() for ch in text)


def _any_of(terms: list[Term]) -> str:
    if len(terms) == 1:
        return terms[0].fts()
    return "(" + " OR ".join(term.fts() for term in terms) + ")"


def _with_exclusions(expression: str, excluded: list[Term]) -> str:
    # `expression` is one term or a parenthesised group: NOT binds it whole.
    return f"{expression} NOT {_any_of(excluded)}" if excluded else expression


def _abbreviate(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
