"""The README's two commands: the one CI runs is the README's test command, and the course command starts as root."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]


def bash_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)]


def test_ci_runs_the_readmes_test_command():
    commands = bash_blocks((ROOT / "README.md").read_text())
    test_command = next(c for c in commands if c.endswith("-m pytest"))
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci, f"`.ci/run` must run the README's test command verbatim: {test_command}"


def test_the_course_command_installs_and_opens_the_first_notebook_as_root_too():
    course = bash_blocks((ROOT / "README.md").read_text())[0]
    assert course.startswith("python3 -m venv .venv && .venv/bin/pip install -r requirements.txt && ")
    assert "jupyter lab --allow-root notebooks/00_start_here.ipynb" in course  # root in containers: JupyterLab
    assert (ROOT / "notebooks" / "00_start_here.ipynb").is_file()  # refuses to start without --allow-root
