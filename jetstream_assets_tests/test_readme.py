"""The README documents every setting and keeps its two fresh-machine commands."""

from pathlib import Path

from jetstream_assets.settings import GCP_SETTINGS, SETTINGS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_in_the_readme_table():
    for setting in (*SETTINGS, *GCP_SETTINGS):
        assert f"| `{setting.name}` |" in README, setting.name


def test_the_two_fresh_machine_commands():
    assert 'pip install -e . && jetstream-assets demo' in README
    assert 'pip install -e ".[dev,deploy]" && python -m pytest -q' in README
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert 'pip install --quiet -e ".[dev,deploy]"' in ci and "python -m pytest -q" in ci
