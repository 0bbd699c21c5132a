"""The course notebooks keep one shape: numbered, stored clean, the STYLE.md spine, and loadable exercise solutions.

These tests read the ``.ipynb`` files; they execute nothing (``pytest --nbval-lax notebooks/`` runs them).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"
COURSE = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))  # the numbered course
EVERY_NOTEBOOK = sorted(p for p in NOTEBOOKS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
LOAD = re.compile(r"^# %load (solutions/[\w.-]+\.py)$")
SPINE = ["## Setup", "## Summary", "## Exercises", "## Further reading"]  # in this order, after the H1 cell
MAX_CODE_LINES = 15  # "short cells": a concept cell is 2–5 lines; exercise stubs with a small array run longer
# How to load a solution, worded the same in every notebook (under its "## Exercises" heading):
LOAD_INSTRUCTION = (
    "To see a solution, delete the `# ` in front of `%load` in the cell below the exercise and run that cell: it "
    "loads the solution into the cell. Run the cell once more to check it."
)


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def source(cell) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


def heading_index(notebook, heading: str) -> int:
    """Index of the markdown cell that holds ``heading`` as a line of its own (-1 if none)."""
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown" and heading in source(cell).splitlines():
            return index
    return -1


def exercises_of(notebook) -> list[tuple[str, str, str]]:
    """``(heading, stub source, load line)`` for every ``### Exercise`` heading of the Exercises section."""
    cells = notebook.cells
    start, end = heading_index(notebook, "## Exercises"), heading_index(notebook, "## Further reading")
    found = []
    for index in range(start, end):
        text = source(cells[index])
        for line in text.splitlines():
            if cells[index].cell_type == "markdown" and line.startswith("### Exercise"):
                stub = source(cells[index + 1]) if cells[index + 1].cell_type == "code" else ""
                load = source(cells[index + 2]).strip() if index + 2 < len(cells) else ""
                found.append((line, stub, load))
    return found


def test_the_course_exists():
    assert len(COURSE) >= 13, f"expected the 13 course notebooks 00–12, found {[p.name for p in COURSE]}"
    numbers = [int(p.name[:2]) for p in COURSE]
    assert numbers == list(range(len(COURSE))), f"notebooks must be numbered 00, 01, ... without gaps: {numbers}"


@pytest.mark.parametrize("path", EVERY_NOTEBOOK, ids=lambda p: str(p.relative_to(NOTEBOOKS)))
def test_stored_without_outputs_or_widget_state(path):
    notebook = read(path)
    nbformat.validate(notebook)
    assert "widgets" not in notebook.metadata, (
        f"{path.name} stores widget state (several MB); clear it with `jupyter nbconvert --clear-output "
        "--ClearMetadataPreprocessor.enabled=True --inplace`"
    )
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {index} is stored with outputs: clear them"
            assert cell.execution_count is None, f"{path.name} cell {index} has an execution count: clear it"
        assert "widgets" not in cell.metadata and "execution" not in cell.metadata, f"{path.name} cell {index}"


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_numbered_name(path):
    assert re.fullmatch(r"\d\d_[a-z0-9]+(_[a-z0-9]+)*\.ipynb", path.name), (
        f"{path.name}: name course notebooks NN_topic.ipynb, lower case with underscores"
    )


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_first_cell_has_title_and_what_you_will_learn(path):
    first = read(path).cells[0]
    assert first.cell_type == "markdown", f"{path.name}: the first cell must be markdown"
    lines = source(first).splitlines()
    assert lines and lines[0].startswith("# "), f"{path.name}: the first line must be an H1 title"
    assert "What you will learn" in source(first), f"{path.name}: the first cell must say 'What you will learn'"
    assert "Prerequisites" in source(first), f"{path.name}: the first cell must list the prerequisites"


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_spine_in_order(path):
    notebook = read(path)
    positions = [heading_index(notebook, heading) for heading in SPINE]
    missing = [heading for heading, index in zip(SPINE, positions) if index < 0]
    assert not missing, f"{path.name} lacks the sections {missing}"
    assert positions == sorted(positions), f"{path.name}: the sections must come in the order {SPINE}"


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_all_imports_in_the_setup_cell(path):
    notebook = read(path)
    setup = heading_index(notebook, "## Setup")
    code = [(index, cell) for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    first_index, first = code[0]
    assert first_index == setup + 1, f"{path.name}: the first code cell must follow the '## Setup' heading"
    assert "manual_seed" in source(first) and "default_device()" in source(first), (
        f"{path.name}: the Setup cell seeds torch and picks the device"
    )
    for index, cell in code[1:]:
        nodes = ast.walk(ast.parse(source(cell)))
        imports = [node for node in nodes if isinstance(node, ast.Import | ast.ImportFrom)]
        assert not imports, f"{path.name} cell {index} imports: keep every import in the Setup cell"


@pytest.mark.parametrize("path", EVERY_NOTEBOOK, ids=lambda p: p.name)
def test_widgets_and_figures_come_from_their_public_packages(path):
    """Notebooks import widgets from ``segtutor.widgets`` and figures from ``segtutor.figures``, never deeper."""
    for cell in read(path).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(source(cell))):
            if isinstance(node, ast.ImportFrom) and node.module:
                private = node.module.startswith(("segtutor.widgets.", "segtutor.figures."))
                assert not private, f"{path.name}: import from segtutor.widgets or segtutor.figures, not {node.module}"


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_cells_are_short_and_define_nothing(path):
    notebook = read(path)
    setup = heading_index(notebook, "## Setup") + 1  # the imports cell may be as long as it needs
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        text = source(cell)
        too_long = index != setup and len(text.splitlines()) > MAX_CODE_LINES
        assert not too_long, f"{path.name} cell {index} has more than {MAX_CODE_LINES} lines"
        nodes = ast.walk(ast.parse(text))
        defined = [node for node in nodes if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Lambda)]
        assert not defined, f"{path.name} cell {index} defines a function or class: helpers live in the package"


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_every_exercise_has_a_checked_stub_and_a_solution(path):
    exercises = exercises_of(read(path))
    assert exercises, f"{path.name} has no '### Exercise' in its Exercises section"
    for heading, stub, load in exercises:
        where = f"{path.name} {heading!r}"
        assert "answer = None" in stub, f"{where}: the stub cell must start the learner at answer = None"
        assert "exercises.check_" in stub, f"{where}: the stub must call a check from segtutor.exercises"
        match = LOAD.match(load)
        assert match, f"{where}: the cell after the stub must be '# %load solutions/<file>.py', got {load!r}"
        assert (NOTEBOOKS / match.group(1)).is_file(), f"{where}: {match.group(1)} does not exist"
        assert match.group(1).startswith(f"solutions/{path.name[:2]}_"), (
            f"{where}: name solution files after their notebook's number"
        )


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_the_load_instruction_is_worded_the_same_everywhere(path):
    notebook = read(path)
    exercises = " ".join(source(notebook.cells[heading_index(notebook, "## Exercises")]).split())
    assert LOAD_INSTRUCTION in exercises, (
        f"{path.name}: under '## Exercises', explain %load with the course's one sentence: {LOAD_INSTRUCTION!r}"
    )
    other = [" ".join(source(cell).split()) for cell in notebook.cells if cell.cell_type == "markdown"]
    mentions = [text for text in other if "%load" in text and LOAD_INSTRUCTION not in text]
    assert not mentions, f"{path.name}: %load is explained in other words elsewhere: {mentions[0][:120]!r}"


def test_every_solution_file_is_used():
    used = {LOAD.match(load).group(1) for path in COURSE for _, _, load in exercises_of(read(path))}
    files = {f"solutions/{p.name}" for p in SOLUTIONS.glob("*.py")}
    assert files == used, f"solution files without an exercise: {sorted(files - used)}; missing: {sorted(used - files)}"


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_further_reading_cites_papers_and_links_resolve(path):
    notebook = read(path)
    reading = source(notebook.cells[heading_index(notebook, "## Further reading")])
    assert "arxiv.org" in reading or "doi.org" in reading, f"{path.name}: cite papers (arXiv or DOI links)"
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for target in re.findall(r"\]\(([^)#]+\.ipynb)\)", source(cell)):
                assert (path.parent / target).is_file(), f"{path.name} links to {target}, which does not exist"
