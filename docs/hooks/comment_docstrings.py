"""Griffe extension: ``#:`` comments above an assignment (or after it, on its line) are its docstring.

The package documents its constants and some attributes the way Sphinx reads them::

    #: Smallest uniform number used for sampling: -log(-log(u)) stays finite.
    MIN_UNIFORM = 1e-12

Griffe reads only string docstrings, so without this the API reference would show these
names without their description.
"""

from __future__ import annotations

from typing import Any

from griffe import Attribute, Docstring, Extension, Visitor


class CommentDocstrings(Extension):
    def on_attribute_instance(self, *, node: Any, attr: Attribute, agent: Any, **kwargs: Any) -> None:
        if attr.docstring is not None or not isinstance(agent, Visitor) or not attr.lineno:
            return
        lines = agent.code.splitlines()
        comment: list[str] = []
        i = attr.lineno - 2  # the line above the assignment, 0-based
        while i >= 0 and lines[i].lstrip().startswith("#:"):
            comment.insert(0, lines[i].lstrip()[2:].removeprefix(" "))
            i -= 1
        if not comment:
            own_line = lines[attr.lineno - 1]
            if "  #: " in own_line:
                comment = [own_line.split("  #: ", 1)[1]]
        if comment:
            attr.docstring = Docstring("\n".join(comment), lineno=i + 2, endlineno=attr.lineno - 1, parent=attr)
