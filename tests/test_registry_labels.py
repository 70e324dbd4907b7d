"""Registry behaviour and label maps (pure functions: no dataset files needed)."""

from __future__ import annotations

import pytest

from mertk.data.labels import (
    LABEL_MAPS,
    get_label_map,
    maps_for,
    objective_class,
    objective_class_from_aus,
)
from mertk.errors import UnknownNameError
from mertk.records import ClipRecord, ImageRecord
from mertk.registry import Registry


def test_registry_rejects_duplicates_and_lists_valid_names():
    reg: Registry[object] = Registry("widget")
    reg.add("b", 2, colour="red")

    @reg.register()
    def a():
        return 1

    assert reg.get("a") is a and reg.entry("b").meta == {"colour": "red"}
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        reg.add("a", 3)
    with pytest.raises(UnknownNameError) as info:
        reg.get("c")
    assert str(info.value) == "unknown widget 'c'; choose from: a, b"
    assert reg.names() == ["a", "b"] and "a" in reg and len(reg) == 2


def test_unknown_label_map_names_the_valid_ones():
    with pytest.raises(UnknownNameError, match="choose from: .*megc2019"):
        get_label_map("megc2020")


def clip(dataset: str, label: str, aus=(), objective=None) -> ClipRecord:
    return ClipRecord(dataset=dataset, subject=f"{dataset}/x", clip="c", label=label, aus=tuple(aus), objective_class=objective)


@pytest.mark.parametrize(
    "dataset,label,expected",
    [
        ("casme2", "happiness", "positive"),
        ("casme2", "Repression", "negative"),
        ("casme2", "disgust", "negative"),
        ("casme2", "surprise", "surprise"),
        ("casme2", "others", None),
        ("casme2", "fear", None),
        ("casme2", "sadness", None),
        ("samm", "Anger", "negative"),
        ("samm", "Contempt", "negative"),
        ("samm", "Sadness", "negative"),
        ("samm", "Happiness", "positive"),
        ("samm", "Other", None),
        ("smic", "negative", "negative"),
        ("smic", "surprise", "surprise"),
        ("ckplus", "7", "surprise"),
        ("ckplus", "5", "positive"),
        ("ckplus", "2", "negative"),
        ("fer2013", "6", None),
    ],
)
def test_megc2019_mapping(dataset, label, expected):
    assert get_label_map("megc2019").map(clip(dataset, label)) == expected


@pytest.mark.parametrize(
    "dataset,label,expected",
    [
        ("casme2", "repression", "other"),
        ("casme2", "others", "other"),
        ("casme2", "sadness", "negative"),
        ("samm", "Other", "other"),
        ("samm", "Anger", "negative"),
        ("casme", "tense", "other"),
        ("smic", "positive", "positive"),
    ],
)
def test_strcn4_mapping(dataset, label, expected):
    assert get_label_map("strcn4").map(clip(dataset, label)) == expected


@pytest.mark.parametrize(
    "aus,expected",
    [
        (["AU6", "AU12"], "I"),
        (["R12"], "I"),  # side prefix dropped
        (["AU1", "AU2"], "II"),
        (["AU25", "AU26"], "II"),
        (["AU4", "AU7"], "III"),
        (["AU4", "AU9", "AU17"], "IV"),
        (["AU15", "AU17"], "V"),
        (["AU1", "AU2", "AU4"], "VI"),  # exact combination beats its subsets (II and V)
        (["AU14"], "VII"),
        ([], "VII"),
        (["AU4", "AU7", "AU43"], "III"),  # most specific listed subset {4, 7}
        (["AU12", "AU25"], "I"),  # two single-AU subsets tie: lower class wins
        (["AU4 or AU7"], "VII"),  # an uncertain alternative is not evidence
    ],
)
def test_objective_class_from_aus(aus, expected):
    assert objective_class_from_aus(aus) == expected


def test_megc2018_prefers_the_annotated_objective_class():
    m = get_label_map("megc2018")
    assert m.map(clip("samm", "Anger", aus=["AU6", "AU12"], objective="III")) == "III"
    assert m.map(clip("casme2", "happiness", aus=["AU6", "AU12"])) == "I"
    assert m.map(clip("casme2", "others", aus=["AU14"])) is None  # class VII is excluded
    assert m.map(clip("samm", "Fear", objective="VI")) is None
    assert objective_class(clip("smic", "positive")) is None


def test_counts_include_excluded_and_follow_class_order():
    m = get_label_map("megc2019")
    records = [clip("casme2", l) for l in ["surprise", "happiness", "others", "disgust", "disgust"]]
    assert list(m.counts(records).items()) == [("negative", 2), ("positive", 1), ("surprise", 1), ("(excluded)", 1)]


def test_paper_subsets_and_static_maps():
    assert get_label_map("shcnn-casme5").classes == ("disgust", "surprise", "repression", "tense", "happiness")
    assert get_label_map("c3d-casme4").map(clip("casme", "Tense")) == "tense"
    assert get_label_map("c3d-casme4").map(clip("casme", "happiness")) is None
    assert get_label_map("c3d-casme2-5").map(clip("casme2", "others")) == "others"
    assert get_label_map("shcnn-samm3").map(clip("samm", "Contempt")) == "negative"
    assert len(get_label_map("ferplus8").classes) == 8
    img = ImageRecord(dataset="fer2013", item="fer2013/0", label="3")
    assert get_label_map("fer2013-7").map(img) == "happy"
    assert {m.name for m in maps_for("casme2")} >= {"megc2019", "megc2018", "strcn4", "shcnn-casme2-5", "c3d-casme2-5"}
    assert "megc2019" in LABEL_MAPS
