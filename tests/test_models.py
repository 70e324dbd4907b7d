"""Every registered model through the same checks, plus the parameter counts the papers print.

Cost: every model runs forward at its declared input size with batch 2. The gradient and
reset_classifier checks of the heaviest models use a smaller input with the same layers (``SMALL``:
only the first FC layer of the fixed-size models shrinks) to keep the file fast on two CPU cores:
``c3d_vgg`` a 16x32x32 clip (the five poolings still fit; its 16x128x128 forward and 2048-feature
flatten are checked separately), the 3- and 4-conv shallow nets 64x64, ``strcn_g`` 140x160, the
ResNets 112x112 with a 3x3 head pool (so that the 4x4 maps after the last block still pool).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mertk.errors import MertkError, UnknownNameError
from mertk.models import (
    STRCN,
    InputSpec,
    ModelError,
    ResNetReduced,
    count_params,
    create_model,
    describe_models,
    list_models,
)
from mertk.models.strcn import RCL
from mertk.registry import MODELS

NAMES = list_models("torch")
#: Fitted models (fit / predict_proba on descriptors, e.g. LBP-TOP + SVM): checked apart, not as nets.
CLASSICAL = list_models("classical")

#: Cheaper configurations for the gradient / reset checks (same layers, smaller input).
SMALL = {
    "c3d_vgg": {"input_size": (16, 32, 32)},
    "strcn_g": {"input_size": (140, 160)},
    **{f"shallow_{n}conv_{k}": {"input_size": 64} for n in (3, 4) for k in ("single", "double")},
    **{f"resnet18_reduced_{d}": {"input_size": 112, "head_pool": 3} for d in range(1, 18, 2)},
}

#: The papers' default class counts.
DEFAULT_CLASSES = {
    "shcnn": 7, "shcnn_42": 7, "shcnn_hsi": 5, "ststnet": 3, "laenet": 3, "off_apexnet": 3,
    "c3d_vgg": 5, "strcn_a": 4, "strcn_g": 4,
    **{f"resnet18_reduced_{d}": 5 for d in range(1, 18, 2)},
    **{f"shallow_{n}conv_{k}": 5 for n in range(1, 5) for k in ("single", "double")},
}

#: Learnable parameter counts printed in the papers that our architectures reproduce exactly.
PAPER_COUNTS = {
    "laenet": 843,  # LAENet Table 1 / text
    "shallow_1conv_single": 82_373,  # Belaiche Table 2
    "shallow_2conv_single": 168_997,
    "shallow_1conv_double": 165_541,
    "shallow_2conv_double": 348_005,
    "shallow_3conv_double": 709_477,
    "shallow_4conv_single": 712_933,
    "shallow_4conv_double": 1_620_197,
    "resnet18_reduced_13": 2_790_149,  # Belaiche Table 1
    "resnet18_reduced_11": 1_608_965,
    "resnet18_reduced_9": 694_277,
    "resnet18_reduced_7": 398_597,
    "resnet18_reduced_5": 178_309,
    "resnet18_reduced_3": 104_197,
    "resnet18_reduced_1": 91_525,
}


def _input(model: nn.Module, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, *model.input_spec.shape)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_every_family_is_registered() -> None:
    assert set(NAMES) == set(DEFAULT_CLASSES)
    assert CLASSICAL == ["lbptop"] and set(list_models()) == set(NAMES) | set(CLASSICAL)
    assert all(isinstance(create_model(n), nn.Module) for n in NAMES)


@pytest.mark.parametrize("name", CLASSICAL)
def test_classical_model_fits_and_counts_its_weights(name: str) -> None:
    model = create_model(name)
    assert not isinstance(model, nn.Module) and model.kind == "classical"
    assert model.input_spec == MODELS.entry(name).meta["input_spec"] and model.num_classes == 3
    clip = torch.randint(0, 256, (model.input_spec.shape[1], 32, 32, 3), dtype=torch.uint8).numpy()
    small = create_model(name, input_size=(model.input_spec.shape[1], 32, 32))
    x = torch.rand(9, small.num_features).numpy()
    assert small.descriptor(clip).shape == (small.num_features,)
    probs = small.fit(x, [0, 1, 2] * 3).predict_proba(x)
    assert probs.shape == (9, 3) and abs(float(probs.sum(axis=1).min()) - 1) < 1e-5
    assert small.num_params == small.svm.coef_.size + small.svm.intercept_.size


@pytest.mark.parametrize("name", NAMES)
def test_forward_shape_spec_and_finite(name: str) -> None:
    model = create_model(name).eval()
    assert model.input_spec == MODELS.entry(name).meta["input_spec"]
    assert model.num_classes == DEFAULT_CLASSES[name]
    with torch.no_grad():
        out = model(_input(model))
    assert out.shape == (2, DEFAULT_CLASSES[name])
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_gets_a_finite_gradient(name: str) -> None:
    model = create_model(name, **SMALL.get(name, {})).train()
    logits = model(_input(model))
    nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}.{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}.{pname} has a non-finite gradient"
    assert model.classifier.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_reset_classifier_keeps_features(name: str) -> None:
    model = create_model(name, **SMALL.get(name, {})).eval()
    before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("classifier.")}
    x = _input(model)
    with torch.no_grad():
        feats = model.forward_features(x)
        model.reset_classifier(7)
        out = model(x)
    assert out.shape == (2, 7) and model.num_classes == 7
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())
    assert torch.equal(model.forward_head(feats), out)


@pytest.mark.parametrize("name", NAMES)
def test_wrong_channel_count_raises(name: str) -> None:
    model = create_model(name, **SMALL.get(name, {})).eval()
    c, *rest = model.input_spec.shape
    with pytest.raises(ModelError, match=rf"expects input \(N, {c}, .*got \(1, {c + 1}, "):
        model(torch.zeros(1, c + 1, *rest))
    with pytest.raises(ModelError, match="expects input"):
        model(torch.zeros(c, *rest))  # batch dimension missing


@pytest.mark.parametrize("name", [n for n in NAMES if create_model(n).strict_size])
def test_wrong_spatial_size_raises_for_fixed_fc_models(name: str) -> None:
    model = create_model(name, **SMALL.get(name, {}))
    c, *rest = model.input_spec.shape
    rest[-1] += 1
    with pytest.raises(ModelError, match=f"{type(model).__name__} expects input"):
        model(torch.zeros(1, c, *rest))


def test_describe_models_counts_and_keys() -> None:
    rows = describe_models()
    assert [r["name"] for r in rows] == list_models()
    for r in rows:
        assert set(r) == {"name", "kind", "params", "input", "feature", "paper", "description"}
        model = create_model(r["name"])
        assert r["kind"] == ("classical" if r["name"] in CLASSICAL else "torch")
        if r["kind"] == "torch":
            assert r["params"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
        else:  # the linear SVM's weights and biases, one-vs-rest at the default grid
            assert r["params"] == model.num_params == model.num_classes * (model.num_features + 1) > 0
        assert r["input"] == list(model.input_spec.shape)
        assert r["feature"] == model.input_spec.feature
        assert r["paper"] and r["description"]


@pytest.mark.parametrize(("name", "expected"), sorted(PAPER_COUNTS.items()))
def test_parameter_counts_match_the_papers(name: str, expected: int) -> None:
    assert count_params(create_model(name)) == expected


def test_counts_we_document_against_the_papers() -> None:
    # SHCNN ~8.7 M at 48x48 (issue), STSTNet ~1.7k (LAENet paper: 1670), OFF-ApexNet 2.77 M quoted;
    # shallow single-3 prints 333,121, which no square FC map gives (see shallow.py).
    assert count_params(create_model("shcnn")) == 8_710_963
    assert count_params(create_model("ststnet")) == 1_683
    assert count_params(create_model("off_apexnet")) == 2_664_475
    assert count_params(create_model("shallow_3conv_single")) == 331_301


def test_laenet_layer_sizes_follow_table_2() -> None:
    model = create_model("laenet").eval()
    x = torch.zeros(1, 3, 28, 28)
    assert [s(x).shape[1:] for s in model.streams] == [(3, 10, 10), (5, 10, 10)]
    assert model.forward_features(x).shape == (1, 8, 5, 5)  # 200 features into the FC layer
    assert model.classifier.in_features == 200


def test_c3d_vgg_flattens_1x4x4x128_to_2048() -> None:
    # test_forward_shape_spec_and_finite runs the 16x128x128 forward through this 2048-input layer.
    model = create_model("c3d_vgg")
    assert model.feature_shape == (128, 1, 4, 4)
    assert model.head[1].in_features == 2048
    small = create_model("c3d_vgg", input_size=(16, 32, 32)).eval()
    with torch.no_grad():
        assert small.forward_features(torch.zeros(1, 3, 16, 32, 32)).shape == (1, 128, 1, 1, 1)
    conv_filters = [m.out_channels for m in model.modules() if isinstance(m, nn.Conv3d)]
    assert conv_filters == [32, 32, 64, 64, 128, 128, 128, 128]


def test_strcn_parameter_count_formula() -> None:
    # conv1 2*25*M + BN 2M; each RCL: 1x1 M*M + 3x3 9*M*M + (steps+1) BN of 2M; FC M*C + C.
    m, rcl, steps, classes = 16, 2, 1, 4
    expected = 2 * 25 * m + 2 * m + rcl * (m * m + 9 * m * m + (steps + 1) * 2 * m) + m * classes + classes
    model = create_model("strcn_g", num_maps=m, num_rcl=rcl, steps=steps)
    assert count_params(model) == expected == 6_148


def test_strcn_pooling_follows_table_1() -> None:
    pools = lambda model: [p.kernel_size for p in model.modules() if isinstance(p, nn.MaxPool2d)]  # noqa: E731
    assert pools(create_model("strcn_a")) == [(4, 1), (4, 1), (4, 4), (2, 2)]
    assert pools(create_model("strcn_g")) == [(4, 4), (4, 4), (4, 4), (2, 2)]
    assert sum(isinstance(m, RCL) for m in create_model("strcn_g", num_rcl=2).modules()) == 2


def test_strcn_a_accepts_another_pixel_count_and_rejects_too_few() -> None:
    model = create_model("strcn_a", input_size=(500, 30)).eval()
    assert model.input_spec.shape == (3, 500, 30)
    with torch.no_grad():
        assert model(torch.randn(2, 3, 700, 30)).shape == (2, 4)  # global pooling: any size that fits
    with pytest.raises(ModelError, match="too small"):
        STRCN(variant="a", input_size=(100, 30))


def test_rcl_without_steps_is_a_feedforward_conv() -> None:
    layer = RCL(8, steps=0)
    assert layer.recurrent is None and len(layer.norms) == 1
    assert count_params(layer) == 8 * 8 + 2 * 8


def test_resnet_reduced_takes_any_channel_count() -> None:
    model = ResNetReduced(depth=7, in_channels=1).eval()
    assert model.input_spec.feature == "flow_vy"
    with torch.no_grad():
        assert model(torch.randn(2, 1, 224, 224)).shape == (2, 5)
    four = ResNetReduced(depth=3, in_channels=4, feature="flow_vxvym")
    assert four.stem[0].in_channels == 4
    with pytest.raises(ModelError, match="pass feature="):
        ResNetReduced(depth=3, in_channels=4)


def test_resnet_depth_removes_residual_blocks() -> None:
    convs = lambda d: sum(  # noqa: E731  successive convs = all convs minus the 1x1 shortcuts
        isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1) for m in create_model(f"resnet18_reduced_{d}").modules()
    )
    assert [convs(d) for d in range(17, 0, -2)] == list(range(17, 0, -2))
    with pytest.raises(ModelError, match="depth must be one of"):
        ResNetReduced(depth=4)


def test_unknown_model_name_lists_valid_names() -> None:
    with pytest.raises(UnknownNameError, match="unknown model 'lenet'; choose from: .*laenet.*strcn_g"):
        create_model("lenet")
    assert issubclass(ModelError, MertkError)


def test_input_spec_rejects_bad_feature_and_shape() -> None:
    with pytest.raises(ModelError, match="input feature must be a feature family name"):
        InputSpec("", (3, 28, 28), "x")
    with pytest.raises(ModelError, match="input shape"):
        InputSpec("uvs", (28, 28), "x")
