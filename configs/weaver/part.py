"""weaver-core network file: a small Particle Transformer on the toy H->bb jets (weaver's get_model interface).

``weaver --network-config configs/weaver/part.py --data-config configs/weaver/toy_hbb.yaml ...`` trains it;
``hin-captum attribute --network configs/weaver/part.py ...`` explains it.
"""
import torch

from weaver.nn.model.ParticleTransformer import ParticleTransformer


class ParticleTransformerWrapper(torch.nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.mod = ParticleTransformer(**kwargs)

    @torch.jit.ignore
    def no_weight_decay(self):
        return {"mod.cls_token"}

    def forward(self, points, features, lorentz_vectors, mask):
        return self.mod(features, v=lorentz_vectors, mask=mask)


def get_model(data_config, **kwargs):
    cfg = dict(
        input_dim=len(data_config.input_dicts["pf_features"]),
        num_classes=len(data_config.label_value),
        pair_input_dim=4,
        embed_dims=[32, 32],
        pair_embed_dims=[16, 16],
        num_heads=4,
        num_layers=2,
        num_cls_layers=1,
        fc_params=[],
        trim=False,
    )
    cfg.update(**kwargs)
    model = ParticleTransformerWrapper(**cfg)
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
