"""Settings: declared once, read from defaults, a TOML file, the environment and flags; the
configuration reference in docs/ is generated from the declaration and must match it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ecrin.core.errors import BadRequest
from ecrin.settings import SETTINGS, Settings, load_settings, render_reference

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def test_defaults_without_file_or_environment(data_dir: Path) -> None:
    settings = load_settings({"data_dir": data_dir}, environ={})
    assert settings == Settings(data_dir=data_dir)


def test_environment_variables_override_defaults(data_dir: Path) -> None:
    settings = load_settings(
        environ={
            "ECRIN_DATA_DIR": str(data_dir),
            "ECRIN_PORT": "9000",
            "ECRIN_FSYNC": "off",
            "ECRIN_DEFAULT_QUOTA_BYTES": "1048576",
            "ECRIN_LOG_LEVEL": "debug",
            "UNRELATED": "ignored",
        }
    )
    assert settings.data_dir == data_dir
    assert settings.port == 9000
    assert settings.fsync is False
    assert settings.default_quota_bytes == 1_048_576
    assert settings.log_level == "debug"


def test_the_toml_file_in_the_data_dir_is_read(data_dir: Path) -> None:
    (data_dir / "ecrin.toml").write_text('port = 7000\nlog_level = "warning"\nfsync = false\n')
    settings = load_settings({"data_dir": data_dir}, environ={})
    assert (settings.port, settings.log_level, settings.fsync) == (7000, "warning", False)


def test_precedence_flags_then_environment_then_file(data_dir: Path) -> None:
    (data_dir / "ecrin.toml").write_text("port = 7000\nworkers = 3\nmax_xml_depth = 10\n")
    environ = {"ECRIN_PORT": "8000", "ECRIN_WORKERS": "4"}
    settings = load_settings({"data_dir": data_dir, "port": 9000, "host": None}, environ=environ)
    assert settings.port == 9000  # flag
    assert settings.workers == 4  # environment
    assert settings.max_xml_depth == 10  # file
    assert settings.host == "127.0.0.1"  # a flag given as None is no flag: the default


def test_an_explicit_config_file_and_ecrin_config(tmp_path: Path, data_dir: Path) -> None:
    explicit = tmp_path / "elsewhere.toml"
    explicit.write_text("port = 6000\n")
    assert load_settings({"data_dir": data_dir}, environ={}, config_file=explicit).port == 6000
    environ = {"ECRIN_CONFIG": str(explicit)}
    assert load_settings({"data_dir": data_dir}, environ=environ).port == 6000
    with pytest.raises(BadRequest, match="does not exist"):
        load_settings({"data_dir": data_dir}, environ={}, config_file=tmp_path / "missing.toml")


def test_an_unknown_key_in_the_file_is_an_error(data_dir: Path) -> None:
    (data_dir / "ecrin.toml").write_text("port = 7000\nprot = 7001\nfsnyc = true\n")
    with pytest.raises(BadRequest, match=r"unknown setting.*fsnyc, prot"):
        load_settings({"data_dir": data_dir}, environ={})


@pytest.mark.parametrize(
    ("source", "text"),
    [
        ("file", 'port = "eighty"\n'),
        ("file", "fsync = 2\n"),
        ("file", "port = [1, 2]\n"),
        ("file", "port = \n"),
        ("env", "ECRIN_PORT=eighty"),
        ("env", "ECRIN_FSYNC=maybe"),
        ("env", "ECRIN_WORKERS=1.5"),
    ],
)
def test_values_of_the_wrong_type_are_errors(data_dir: Path, source: str, text: str) -> None:
    environ: dict[str, str] = {}
    if source == "file":
        (data_dir / "ecrin.toml").write_text(text)
    else:
        name, _, value = text.partition("=")
        environ[name] = value
    with pytest.raises(BadRequest):
        load_settings({"data_dir": data_dir}, environ=environ)


def test_settings_are_declared_once() -> None:
    """The typed object and the declaration list the same settings, defaults and types."""
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    assert sorted(fields) == sorted(s.name for s in SETTINGS)
    for setting in SETTINGS:
        assert fields[setting.name].default == setting.default, setting.name
        assert isinstance(setting.default, setting.type), setting.name
        assert setting.help.strip(), f"{setting.name} has no help text"
        assert setting.env_var == "ECRIN_" + setting.name.upper()


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().port = 1  # type: ignore[misc]


def test_docs_configuration_is_the_generated_reference() -> None:
    expected = render_reference()
    assert DOCS.read_text("utf-8") == expected, (
        "docs/configuration.md is out of date: regenerate it with "
        "`ecrin config reference > docs/configuration.md`"
    )
    for setting in SETTINGS:
        assert f"| `{setting.name}` | `{setting.env_var}` |" in expected
