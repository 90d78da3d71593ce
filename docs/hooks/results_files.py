"""MkDocs hook: the figures in the repository's results/ folder, served by the site as results/....

The figures live once, in results/ (where `make results`, `make bench-*` and the scripts write them),
not copied into docs/. The pages link them as ../results/NAME.png, which is right for the Markdown
files read on their own (on GitHub, say), and the generated result blocks link them as results/NAME.png
(the path the scripts print, relative to the repository root); both resolve to the figures added here.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File, Files

_FIGURES = ("*.png", "*.gif")
_PARENT_RESULTS = re.compile(r"\]\(\.\./results/")


def _results_dir(config) -> Path:
    return Path(config["config_file_path"]).parent / "results"


def on_files(files: Files, config) -> Files:
    root = _results_dir(config).parent
    for pattern in _FIGURES:
        for path in sorted(_results_dir(config).rglob(pattern)):
            src_uri = path.relative_to(root).as_posix()
            if files.get_file_from_path(src_uri) is None:
                files.append(File(src_uri, str(root), config["site_dir"], config["use_directory_urls"]))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    # Pages sit at the top of docs/, where results/... is the path the added figures have.
    if "/" not in page.file.src_uri:
        markdown = _PARENT_RESULTS.sub("](results/", markdown)
    return markdown
