"""weaver-core network file: a small ParticleNet on the toy H->bb jets (weaver's get_model interface).

``weaver --network-config configs/weaver/particlenet.py --data-config configs/weaver/toy_hbb.yaml ...`` trains it;
``hin-captum attribute --network configs/weaver/particlenet.py ...`` explains it.
"""
import torch

from weaver.nn.model.ParticleNet import ParticleNet


class ParticleNetWrapper(torch.nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.mod = ParticleNet(**kwargs)

    def forward(self, points, features, lorentz_vectors, mask):
        return self.mod(points, features, mask)


def get_model(data_config, **kwargs):
    cfg = dict(
        input_dims=len(data_config.input_dicts["pf_features"]),
        num_classes=len(data_config.label_value),
        conv_params=[(8, (32, 32, 32)), (8, (48, 48, 48))],
        fc_params=[(64, 0.1)],
        use_fusion=False,
        trim=False,  # weaver's sequence trimmer changes the input length after the model's fifth call
    )
    cfg.update(**kwargs)
    model = ParticleNetWrapper(**cfg)
    model_info = {
        "input_names": list(data_config.input_names),
        "input_shapes": {k: ((1,) + s[1:]) for k, s in data_config.input_shapes.items()},
        "output_names": ["softmax"],
        "dynamic_axes": {**{k: {0: "N", 2: "n_" + k.split("_")[0]} for k in data_config.input_names},
                         "softmax": {0: "N"}},
    }
    return model, model_info


def get_loss(data_config, **kwargs):
    return torch.nn.CrossEntropyLoss()
