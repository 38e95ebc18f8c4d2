"""The repository's own promises: CI runs exactly the README's test command."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    lines = (ROOT / "README.md").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.startswith("    pip install")]


def test_readme_has_exactly_two_setup_commands():
    cmds = _readme_commands()
    assert len(cmds) == 2, cmds
    assert cmds[0].endswith("python -m manifold_lab.run toy_sphere")
    assert cmds[1].endswith("python -m pytest")


def test_ci_runs_the_readme_test_command_verbatim():
    test_cmd = _readme_commands()[1]
    ci_lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_cmd in ci_lines


def test_ci_pins_cpu_torch_but_pyproject_keeps_an_open_range():
    constraints = (ROOT / "constraints-cpu.txt").read_text()
    assert "torch==" in constraints
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"torch>=' in pyproject and '"torch==' not in pyproject
