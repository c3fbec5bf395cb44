"""A griffe extension for the site: the reStructuredText bits of genbound's numpy-style docstrings in Markdown.

The docstrings are written for numpydoc (Sphinx), so they use ``:func:`name``` roles, ``:math:`...``` and
``.. math::`` blocks. mkdocstrings renders docstrings as Markdown, where these would show literally; this
extension rewrites them before parsing: roles become code spans (``~a.b`` shows ``b``), inline math becomes
``$...$`` and a math block ``$$ ... $$`` (rendered by KaTeX through pymdownx.arithmatex).
"""
import re
import textwrap

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|data|attr|obj|exc|const):`~?([^`]+)`")
MATH = re.compile(r":math:`([^`]+)`")
BLOCK = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<first>.*)\n(?P<body>(?:(?P=indent)[ \t]+.*\n|[ \t]*\n)*)",
                   flags=re.M)


def _role(match):
    text = match[1]
    if match[0].split("`")[1].startswith("~"):
        text = text.rsplit(".", 1)[-1]
    return f"`{text}`"


def _block(match):
    indent = match["indent"]
    lines = [match["first"]] if match["first"].strip() else []
    body = textwrap.dedent(match["body"]).strip("\n")
    if body:
        lines += body.splitlines()
    inner = "\n".join(f"{indent}{line}" if line.strip() else "" for line in lines)
    return f"{indent}$$\n{inner}\n{indent}$$\n\n"


def rst_to_markdown(text):
    """The docstring ``text`` with Sphinx roles and math in Markdown."""
    text = BLOCK.sub(_block, text)
    text = MATH.sub(lambda m: f"${m[1]}$", text)
    return ROLE.sub(_role, text)


class RstToMarkdown(griffe.Extension):
    """Rewrite every docstring with :func:`rst_to_markdown` as it is loaded."""

    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
