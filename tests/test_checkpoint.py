"""Checkpoints load with weights_only=True and refuse anything else with a clear error."""

from __future__ import annotations

import collections

import pytest
import torch

from edgeattn.checkpoint import ModelHandle, import_state_dict, load_checkpoint, save_checkpoint
from edgeattn.errors import InputError
from edgeattn.models import ModelConfig

CFG = ModelConfig("attn_vgg11", 10, 32, {"width": 0.25})


@pytest.fixture()
def ckpt(tmp_path):
    return save_checkpoint(ModelHandle.new(CFG).with_step("test"), tmp_path / "m.pt")


def test_round_trip_keeps_config_history_and_weights(ckpt):
    h = load_checkpoint(ckpt)
    assert h.config == CFG and h.history[0]["step"] == "test"
    assert h.input_spec.size == (32, 32)


def test_other_class_count_is_rebuilt_from_config(tmp_path):
    cfg = ModelConfig("mobilevit_xxs", 7, 64)
    path = save_checkpoint(ModelHandle.new(cfg), tmp_path / "m.pt")
    assert load_checkpoint(path).module(torch.zeros(1, 3, 64, 64)).shape == (1, 7)


def test_truncated_checkpoint_is_refused(ckpt):
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="corrupt or truncated"):
        load_checkpoint(ckpt)


def test_corrupt_and_empty_checkpoints_are_refused(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(InputError, match="corrupt"):
        load_checkpoint(bad)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        load_checkpoint(empty)


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_objects_are_refused_not_executed(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"format": "edgeattn.checkpoint", "payload": Evil(), "od": collections.Counter()}, path)
    with pytest.raises(InputError, match="pickled Python objects"):
        load_checkpoint(path)
    assert "must never run" not in capsys.readouterr().out


def test_wrong_architecture_is_refused(tmp_path, ckpt):
    payload = torch.load(ckpt, weights_only=True)
    payload["config"]["options"]["width"] = 0.5
    torch.save(payload, tmp_path / "wrong.pt")
    with pytest.raises(InputError, match="do not fit"):
        load_checkpoint(tmp_path / "wrong.pt")


def test_plain_state_dict_needs_import(tmp_path):
    model = ModelHandle.new(ModelConfig("mobilevit_xxs", 1000, 256)).module
    torch.save(model.state_dict(), tmp_path / "timm.pth")
    with pytest.raises(InputError, match="edgeattn import"):
        load_checkpoint(tmp_path / "timm.pth")
    handle = import_state_dict(tmp_path / "timm.pth", ModelConfig("mobilevit_xxs", 1000, 256))
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        torch.testing.assert_close(handle.module(x), model.eval()(x))


def test_timm_efficientformer_weights_import_at_another_resolution(tmp_path):
    """A 224-px EfficientFormer state dict (as timm releases it) imports at 64 px (biases resized)."""
    import timm

    ref = timm.create_model("efficientformer_l1", pretrained=False, num_classes=10)
    torch.save(ref.state_dict(), tmp_path / "ef.pth")
    handle = import_state_dict(tmp_path / "ef.pth", ModelConfig("efficientformer_l1", 10, 64))
    assert handle.module(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_cli_reports_bad_checkpoint_in_one_line(tmp_path, run_cli):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"nope")
    code, out, err = run_cli("profile", str(bad))
    assert code == 2
    assert "corrupt" in err and "Traceback" not in err + out
    assert len(err.strip().splitlines()) <= 2
