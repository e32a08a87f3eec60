"""Every option is written once: the CLI's defaults, the recipe schema's defaults and the library's
defaults are the same objects, taken from the stage's config class."""

from __future__ import annotations

import inspect

import pytest

from edgeattn.bench.config import BenchConfig
from edgeattn.cli.bench_cmd import bench
from edgeattn.cli.export_cmd import export_command
from edgeattn.cli.prune_cmd import prune
from edgeattn.cli.quantize_cmd import quantize
from edgeattn.cli.train_cmd import train
from edgeattn.cli.validate_cmd import validate_command
from edgeattn.config import StageConfig
from edgeattn.device import DeviceConfig
from edgeattn.errors import InputError
from edgeattn.export import export_artifact
from edgeattn.export.config import ExportConfig, ExportShape
from edgeattn.pipeline import schema
from edgeattn.prune import prune_checkpoint
from edgeattn.prune.config import PruneConfig
from edgeattn.quantize import quantize_checkpoint
from edgeattn.quantize.config import QuantizeConfig
from edgeattn.train import TrainConfig, train_checkpoint
from edgeattn.validate import Gates

# (config class, CLI command, recipe section, library function)
STAGES = [
    (TrainConfig, train, schema.TrainSection, train_checkpoint),
    (PruneConfig, prune, schema.PruneSection, prune_checkpoint),
    (QuantizeConfig, quantize, schema.QuantMethod, quantize_checkpoint),
    (ExportConfig, export_command, schema.ExportSection, export_artifact),
    (BenchConfig, bench, schema.BenchSection, None),
    (DeviceConfig, validate_command, schema.DeviceSection, None),
]


def cli_defaults(command) -> dict:
    """Parameter name -> the default of its Typer option, as Typer sees the command."""
    return {
        name: getattr(p.default, "default", p.default)
        for name, p in inspect.signature(command, eval_str=True).parameters.items()
    }


def shared_fields(config: type[StageConfig], names) -> list[str]:
    return [n for n in names if n in config.model_fields]


@pytest.mark.parametrize("config,command,section,_", STAGES, ids=[s[0].__name__ for s in STAGES])
def test_cli_defaults_are_the_config_defaults(config, command, section, _):
    defaults = cli_defaults(command)
    shared = shared_fields(config, defaults)
    excluded = {"options"} if config is ExportConfig else set()
    assert set(shared) == set(config.model_fields) - excluded, "every config field is a CLI option"
    for name in shared:
        want = config.model_fields[name].default
        if isinstance(want, tuple):  # repeatable options take a list of the same items
            assert tuple(defaults[name] or ()) == want, name
        else:
            assert defaults[name] is want, f"{command.__name__} --{name}: {defaults[name]!r} is not {want!r}"
    assert "config" not in defaults  # the command receives the built config, users type its fields


@pytest.mark.parametrize("config,_,section,__", STAGES, ids=[s[0].__name__ for s in STAGES])
def test_recipe_sections_are_the_stage_configs(config, _, section, __):
    assert issubclass(section, config if config is not ExportConfig else ExportShape)
    for name in section.known_keys():
        if name in config.model_fields:
            assert section.model_fields[name].default is config.model_fields[name].default, name
    assert schema.GatesSection is Gates


@pytest.mark.parametrize(
    "config,_,__,function", [s for s in STAGES if s[3]], ids=lambda s: getattr(s, "__name__", "")
)
def test_library_functions_take_the_config_and_repeat_no_option(config, _, __, function):
    params = inspect.signature(function).parameters
    assert params["config"].default is None  # None: `config()` with all its defaults
    assert not shared_fields(config, params), f"{function.__name__} repeats config fields as parameters"


def test_a_hand_written_default_would_be_caught():
    """Negative control: a CLI option whose default is typed again (an equal, separate float) fails."""
    import typer

    def command(lr: float = typer.Option(float("2e-3"), "--lr")) -> None: ...

    assert cli_defaults(command)["lr"] is not TrainConfig.model_fields["lr"].default


def test_bad_values_name_the_flag_and_the_range():
    with pytest.raises(InputError, match=r"--ratio 1.5 is outside \[0, 1\)"):
        PruneConfig.build(flags={"ratio": "--ratio"}, ratio=1.5)
    with pytest.raises(InputError, match="no option ration — did you mean 'ratio'"):
        PruneConfig.build(ration=0.5)
