"""Every model architecture of the five papers (and their baselines) behind one registry.

>>> from mertk.models import create_model
>>> model = create_model("laenet")          # 843 learnable parameters
>>> model.input_spec.feature, model.input_spec.shape
('uvs', (3, 28, 28))

Each family lives in its own module with its registered entry points at the bottom; importing this
package registers them all in :data:`mertk.registry.MODELS`.
"""

from ._base import InputSpec, MerModel, ModelError, count_params
from ._registry import MODEL_KINDS, create_model, describe_models, list_models, model_kind, register_model
from . import c3d_vgg, lbptop, offapexnet, resnet_reduced, shallow, shcnn, strcn, ststnet  # noqa: F401  (registration)
from .c3d_vgg import C3DVGG
from .lbptop import LBPTOPSVM
from .offapexnet import OffApexNet
from .resnet_reduced import ResNetReduced
from .shallow import ShallowNet
from .shcnn import SHCNN
from .strcn import RCL, STRCN
from .ststnet import LAENet, STSTNet, StreamNet

__all__ = [
    "InputSpec", "MerModel", "ModelError", "count_params",
    "MODEL_KINDS", "create_model", "describe_models", "list_models", "model_kind", "register_model",
    "C3DVGG", "LBPTOPSVM", "OffApexNet", "ResNetReduced", "ShallowNet", "SHCNN", "RCL", "STRCN",
    "LAENet", "STSTNet", "StreamNet",
]
