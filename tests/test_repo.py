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


def test_readme_python_example_runs_and_shows_tangent_bayes_gradients(capsys):
    text = (ROOT / "README.md").read_text()
    block = text.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(block, "README.md", "exec"), {})
    first_line = capsys.readouterr().out.splitlines()[0]
    # The exact Bayes gradient on the sphere mixture is tangent up to O(noise_std^2).
    assert first_line.startswith("tensor(1.0000") or first_line.startswith("tensor(0.9999")
