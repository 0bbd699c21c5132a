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


def class_command() -> str:
    """The README's command that serves a class of learners on one machine (the one with ``--pool_size``)."""
    return next(c for c in bash_blocks((ROOT / "README.md").read_text()) if "--pool_size=" in c)


def test_the_class_command_parses_and_every_option_reaches_a_real_voila_setting():
    import shlex

    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
    from traitlets.config.loader import DeferredConfigString
    from traitlets.utils.importstring import import_item
    from voila.app import Voila
    from voila.execute import VoilaExecutor
    from voila.voila_kernel_manager import voila_kernel_manager_factory

    from segtutor.classroom import PacedKernelManager

    words = shlex.split(class_command())
    assert words[0] == ".venv/bin/voila" and "\\" not in class_command()
    app = Voila()
    app.parse_command_line(words[1:])
    assert app.extra_args == ["notebooks/dashboards/training_studio.ipynb"]
    assert (ROOT / app.extra_args[0]).is_file()
    # each option names a setting of a class Voila configures (a misspelt one would be ignored with a warning)
    manager = voila_kernel_manager_factory(AsyncMappingKernelManager, True, 1)
    classes = {cls.__name__: cls for cls in (Voila, VoilaExecutor, manager, *Voila().classes)}
    assert set(app.config) <= set(classes), f"options of unknown classes: {set(app.config) - set(classes)}"
    settings = {}
    for section, values in app.config.items():
        traits = classes[section].class_traits(config=True)
        for name, value in values.items():
            assert name in traits, f"{section}.{name} is not a Voila setting"
            if isinstance(value, DeferredConfigString):  # a class the app knows only once it has made it
                value = traits[name].from_string(value)
            settings[f"{section}.{name}"] = value
    assert settings == {"VoilaConfiguration.preheat_kernel": True,
                        "VoilaConfiguration.default_pool_size": 10,  # a class of 8, and two spares
                        "VoilaConfiguration.multi_kernel_manager_class": "segtutor.classroom.PacedKernelManager",
                        "VoilaKernelManager.fill_delay": 30.0, "VoilaExecutor.iopub_timeout": 60}  # fmt: skip
    assert import_item(settings["VoilaConfiguration.multi_kernel_manager_class"]) is PacedKernelManager
