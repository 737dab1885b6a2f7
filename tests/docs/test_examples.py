"""Every ```python block of README.md and the user guides runs, so the examples cannot go stale.

The blocks of one page run in order in one namespace (a later block may use what an earlier
one made), in a fresh interpreter and a fresh temporary directory, so ``runs/...`` paths
land there. A block right after the line ``<!-- no-run -->`` is skipped (it needs a GPU,
the network or a long run);
```bash / ```console blocks are not run. Pages keep their examples small (the embedded
``digits`` dataset, a few epochs) so that this file stays in the fast suite.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", ROOT / "docs" / "getting-started.md",
         *sorted((ROOT / "docs" / "guides").glob("*.md"))]
NO_RUN = "<!-- no-run -->"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def python_blocks(text: str) -> list[tuple[int, str, bool]]:
    """(line number, code, runs) of each top-level ```python block of a Markdown text."""
    blocks = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1].strip()
        blocks.append((line, match.group(1), before != NO_RUN))
    return blocks


def test_collector_finds_and_skips_blocks():
    text = "a\n```python\nx = 1\n```\n\n<!-- no-run -->\n```python\nraise SystemExit\n```\n```bash\nls\n```\n"
    assert python_blocks(text) == [(2, "x = 1\n", True), (7, "raise SystemExit\n", False)]


def test_every_page_is_collected():
    assert all(page.exists() for page in PAGES)
    assert len(PAGES) >= 12


def test_site_home_is_the_readme():
    """docs/index.md is a marker the docs hook replaces with README.md, so the home page and
    the README cannot differ (and the README's examples run above)."""
    assert (ROOT / "docs" / "index.md").read_text(encoding="utf-8").strip() == "<!-- vaekit:readme -->"


def run_page(page: Path) -> None:
    """Run the page's blocks in order in one namespace, in the current directory."""
    namespace: dict[str, object] = {"__name__": f"docs_example_{page.stem}"}
    for line, code, runs in python_blocks(page.read_text(encoding="utf-8")):
        if runs:
            print(f"--- {page.relative_to(ROOT)}, the python block at line {line}", flush=True)
            exec(compile(code, f"{page.relative_to(ROOT)}:{line}", "exec"), namespace)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_examples_run(page: Path, tmp_path: Path) -> None:
    """Each page in a fresh interpreter: torch and scikit-learn each bring an OpenMP runtime,
    and t-SNE after many trainings in one process has crashed; a page's state stays its own."""
    if not any(runs for _, _, runs in python_blocks(page.read_text(encoding="utf-8"))):
        pytest.skip("no runnable python block")
    env = {**os.environ, "VAEKIT_CACHE_DIR": str(tmp_path / "cache")}
    for attempt in (1, 2):
        (tmp_path / f"try{attempt}").mkdir()
    if "VAEKIT_DATA_DIR" not in env and (ROOT.parent / "shared" / "data").is_dir():
        env["VAEKIT_DATA_DIR"] = str(ROOT.parent / "shared" / "data")
    for attempt in (1, 2):
        done = subprocess.run([sys.executable, __file__, str(page)], cwd=tmp_path / f"try{attempt}", env=env,
                              capture_output=True, text=True, timeout=300)
        # a crash by signal (scikit-learn's Barnes-Hut t-SNE, run by the report, has segfaulted
        # now and then with torch's OpenMP runtime loaded too) gets one more try; an error does not
        if done.returncode >= 0:
            break
    if done.returncode != 0:
        blocks = [line for line in done.stdout.splitlines() if line.startswith("--- ")]
        where = blocks[-1][4:] if blocks else str(page.relative_to(ROOT))
        pytest.fail(f"{where} failed (exit status {done.returncode}):\n{done.stderr[-4000:]}", pytrace=False)


if __name__ == "__main__":
    run_page(Path(sys.argv[1]).resolve())
