"""Checkpoints: a faithful round trip, and every damaged or foreign file refused with a one-line DataError."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from mertk.engine.checkpoint import Checkpoint, digest, load_checkpoint, save_checkpoint
from mertk.errors import DataError, ModelError
from mertk.models import create_model
from mertk.preprocess.pipeline import config_for_model

CLASSES = ("negative", "positive", "surprise")


@pytest.fixture()
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    m = create_model("laenet", num_classes=3)
    with torch.no_grad():  # non-default BatchNorm statistics, so buffers matter in the comparison
        for module in m.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.num_batches_tracked.fill_(7)
    return m.eval()


@pytest.fixture()
def checkpoint(model: torch.nn.Module) -> Checkpoint:
    config = config_for_model("laenet", flow_params={"lambda_": 0.1}, flow_size=84)
    return Checkpoint(
        model="laenet", model_kwargs={"num_classes": 3}, classes=CLASSES, label_map="megc2019",
        features=config.as_dict(), inference="none",
        state_dict={k: v.clone() for k, v in model.state_dict().items()},
        arrays={"strcn_mask": np.array([[True, False], [False, True]])},
        meta={"recipe": "laenet-megc2019", "seed": np.int64(3), "clips": ["casme2/sub01/EP01"]},
    )


@pytest.fixture()
def saved(checkpoint: Checkpoint, tmp_path: Path) -> Path:
    return save_checkpoint(tmp_path / "run" / "model.pt", checkpoint)


def _resave(path: Path, payload: dict) -> None:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    path.write_bytes(buffer.getvalue())


def _payload(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_round_trip(checkpoint: Checkpoint, model: torch.nn.Module, saved: Path) -> None:
    assert sorted(p.name for p in saved.parent.iterdir()) == ["model.pt"]  # no temporary file left
    loaded = load_checkpoint(saved)
    assert (loaded.model, loaded.classes, loaded.label_map, loaded.inference) == ("laenet", CLASSES, "megc2019", "none")
    assert dict(loaded.model_kwargs) == {"num_classes": 3}
    assert loaded.meta["recipe"] == "laenet-megc2019" and loaded.meta["seed"] == 3 and "mertk" in loaded.meta
    assert set(loaded.state_dict) == set(checkpoint.state_dict)
    for name, tensor in checkpoint.state_dict.items():
        assert loaded.state_dict[name].dtype == tensor.dtype and torch.equal(loaded.state_dict[name], tensor), name
    assert loaded.arrays["strcn_mask"].dtype == torch.bool
    assert loaded.arrays["strcn_mask"].numpy().tolist() == [[True, False], [False, True]]
    assert loaded.prepare_config() == checkpoint.prepare_config() == config_for_model("laenet", flow_params={"lambda_": 0.1}, flow_size=84)
    rebuilt = loaded.build_model()
    assert not rebuilt.training
    x = torch.randn(4, 3, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model(x))


def test_run_dir_loads_its_model_pt(saved: Path) -> None:
    assert load_checkpoint(saved.parent).classes == CLASSES


def test_flipped_tensor_bytes_are_refused(checkpoint: Checkpoint, saved: Path) -> None:
    data = bytearray(saved.read_bytes())
    weight = checkpoint.state_dict["classifier.weight"].numpy().tobytes()
    at = bytes(data).find(weight)
    assert at > 0 and bytes(data).count(weight) == 1
    data[at + 5] ^= 0xFF
    saved.write_bytes(bytes(data))
    with pytest.raises(DataError) as err:
        load_checkpoint(saved)
    # torch's zip reader does not check CRCs, so the flip reaches the digest check.
    assert str(err.value) == f"{saved}: checkpoint digest mismatch: the file was modified after it was written"


def test_modified_weights_with_old_digest_are_refused(saved: Path) -> None:
    payload = _payload(saved)
    payload["state_dict"]["classifier.bias"] = payload["state_dict"]["classifier.bias"] + 0.01
    _resave(saved, payload)
    with pytest.raises(DataError, match="digest mismatch") as err:
        load_checkpoint(saved)
    assert err.value.path == str(saved)


def test_modified_metadata_with_old_digest_is_refused(saved: Path) -> None:
    payload = _payload(saved)
    payload["classes"] = ["positive", "negative", "surprise"]
    _resave(saved, payload)
    with pytest.raises(DataError, match="digest mismatch"):
        load_checkpoint(saved)


def test_resaved_with_a_fresh_digest_loads(saved: Path) -> None:
    payload = _payload(saved)
    payload["meta"]["note"] = "edited"
    payload["digest"] = digest(payload)
    _resave(saved, payload)
    assert load_checkpoint(saved).meta["note"] == "edited"


@pytest.mark.parametrize("keep", [0, 100, 0.5, -10])
def test_truncated_file_is_refused(saved: Path, keep: float) -> None:
    data = saved.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else (keep if keep >= 0 else len(data) + keep)
    saved.write_bytes(data[:n])
    with pytest.raises(DataError, match=r"not a readable mertk checkpoint \(") as err:
        load_checkpoint(saved)
    assert str(err.value).startswith(f"{saved}: ")


def test_foreign_state_dict_is_refused(model: torch.nn.Module, tmp_path: Path) -> None:
    path = tmp_path / "weights.pth"
    torch.save(model.state_dict(), path)
    with pytest.raises(DataError, match=r"not a mertk checkpoint \(no 'mertk-checkpoint' marker\)") as err:
        load_checkpoint(path)
    assert err.value.path == str(path)


def test_pickled_code_is_not_run(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": "mertk-checkpoint", "obj": io.StringIO("x")}, path)
    with pytest.raises(DataError, match="not a readable mertk checkpoint"):
        load_checkpoint(path)


def test_other_format_version_and_missing_keys(saved: Path) -> None:
    payload = _payload(saved)
    _resave(saved, {**payload, "format_version": 99})
    with pytest.raises(DataError, match="checkpoint format version 99; this mertk reads 1"):
        load_checkpoint(saved)
    _resave(saved, {k: v for k, v in payload.items() if k not in ("classes", "digest")})
    with pytest.raises(DataError, match="checkpoint lacks classes, digest"):
        load_checkpoint(saved)


def test_non_tensor_weight_is_a_data_error(saved: Path) -> None:
    payload = _payload(saved)
    payload["state_dict"]["classifier.bias"] = [0.0, 0.0, 0.0]
    _resave(saved, payload)
    with pytest.raises(DataError, match="entry 'classifier.bias' is not a tensor"):
        load_checkpoint(saved)


def test_missing_paths(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_checkpoint(tmp_path / "nope.pt")
    assert str(err.value) == f"{tmp_path / 'nope.pt'}: checkpoint not found"
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text("{}")
    with pytest.raises(DataError) as err:
        load_checkpoint(run)
    assert str(err.value) == f"{run}: a run directory without model.pt"


def test_weights_that_do_not_fit_the_model(checkpoint: Checkpoint, tmp_path: Path) -> None:
    five = Checkpoint(**{**checkpoint.__dict__, "model_kwargs": {"num_classes": 5}})
    loaded = load_checkpoint(save_checkpoint(tmp_path / "five.pt", five))
    with pytest.raises(ModelError, match=r"checkpoint weights do not fit model laenet: size mismatch for classifier\.weight"):
        loaded.build_model()
    other = Checkpoint(**{**checkpoint.__dict__, "model": "ststnet"})
    with pytest.raises(ModelError, match="checkpoint weights do not fit model ststnet"):
        load_checkpoint(save_checkpoint(tmp_path / "other.pt", other)).build_model()
