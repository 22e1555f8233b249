"""hin_captum.prototype on the pretrained toy model: confident prototypes that stay on the real tracks' manifold."""
import pytest
import torch

from hin_captum import bundled, load_model
from hin_captum.data import read_root
from hin_captum.prototypes import prototype


@pytest.fixture(scope="module")
def toy():
    return load_model(bundled("pretrained/hin_toy.pt")), read_root(bundled("pretrained/toy_jets.root")).jets


@pytest.fixture(scope="module")
def made(toy):
    model, jets = toy
    return prototype(model, jets, target=1, n=12, seed=3)


def test_prototypes_start_from_the_least_hbb_like_jets_and_reach_confidence(toy, made):
    model, jets = toy
    with torch.no_grad():
        p_hbb = torch.cat([torch.softmax(model(jet.x, jet.edge_index, torch.zeros(len(jet.x), dtype=torch.long)),
                                         -1)[:, 1] for jet in jets])
    assert torch.allclose(made.start_scores.sort().values, p_hbb.sort().values[:12], atol=1e-5)
    assert (made.scores >= 0.99).float().mean() >= 0.95
    assert made.jets.num_graphs == 12 and torch.equal(made.jets.edge_index, made.start.edge_index)


def test_every_feature_stays_in_the_real_range_and_discrete_ones_on_real_values(toy, made):
    _, jets = toy
    real = torch.cat([jet.x for jet in jets]).double()
    low, high = torch.quantile(real, 0.005, dim=0), torch.quantile(real, 0.995, dim=0)
    x = made.jets.x.double()
    assert bool(((x >= low - 1e-5) & (x <= high + 1e-5)).all())
    for feature in range(real.shape[1]):
        values = torch.unique(real[:, feature])
        if len(values) <= 12:  # configs/prototype.yml: discrete_levels
            assert bool(torch.isin(x[:, feature], values).all()), feature
    assert int(made.manifold.discrete.sum()) > 0


def test_the_same_seed_gives_the_same_prototypes(toy, made):
    model, jets = toy
    again = prototype(model, jets, target=1, n=12, seed=3)
    assert torch.equal(again.jets.x, made.jets.x)


def test_torch_settings_and_the_model_come_back_untouched(toy):
    model, jets = toy
    before = {name: value.clone() for name, value in model.state_dict().items()}
    prototype(model, jets, n=2, steps=3, refine_steps=1)
    assert not torch.are_deterministic_algorithms_enabled()
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    assert all(parameter.grad is None for parameter in model.parameters())


def test_unknown_options_and_targets_are_refused_in_one_line(toy):
    from hin_captum import InputError

    model, jets = toy
    with pytest.raises(InputError, match="^unknown prototype option"):
        prototype(model, jets, n=2, step=3)
    with pytest.raises(InputError, match="^target 5 is not a class"):
        prototype(model, jets, target=5, n=2)


def test_on_the_sanity_model_a_planted_feature_moves_most_in_its_own_units():
    """From class-0 sanity jets (the label is the sign of mean(a0 + 2 a3)), the largest mean change of a feature,
    in that feature's units, is in feature 3 or 0; in units of each spread, noise features (spread 1) move about as
    much, as the README reports."""
    from hin_captum.data.synthetic import make_sanity_jets

    model = load_model(bundled("pretrained/hin_sanity.pt"))
    jets = make_sanity_jets(128, seed=7)
    zero = [jet for jet in jets if int(jet.y) == 0][:10]
    made = prototype(model, jets, target=1, n=10, seed=0, start=zero)
    change = (made.jets.x - made.start.x).abs().mean(0)
    assert int(change.argmax()) in (0, 3)
    assert set(torch.argsort(change, descending=True)[:2].tolist()) == {0, 3}


def test_columns_equal_on_every_real_track_stay_equal_in_the_prototypes(made):
    """track_pt, track_ptrel and track_dlambdadz are read twice: one branch each when written as an ntuple."""
    from hin_captum.data.schema import CMS_HBB

    x = made.jets.x
    for name in ("track_pt", "track_ptrel", "track_dlambdadz"):
        first, second = [k for k, feature in enumerate(CMS_HBB.features) if feature == name]
        assert torch.equal(x[:, first], x[:, second]), name


def test_the_jet_density_is_a_shrunk_gaussian_of_per_jet_means_and_spreads():
    """JetDensity.energy against the formula in float64: z = (s - mean) / sd per statistic, C the correlation of
    the real jets' z shrunk halfway to its diagonal, energy = z^T C^+ z / (2 d)."""
    import numpy as np

    from hin_captum.prototypes.manifold import JetDensity

    generator = torch.Generator().manual_seed(4)
    x = torch.randn(400, 3, generator=generator)
    batch = torch.arange(40).repeat_interleave(10)
    density = JetDensity.of_jets(x, batch, 40, shrinkage=0.5)
    per_jet = x.double().numpy().reshape(40, 10, 3)
    statistics = np.concatenate([per_jet.mean(1), per_jet.std(1)], 1)
    z = (statistics - statistics.mean(0)) / statistics.std(0, ddof=1)
    correlation = z.T @ z / 39
    shrunk = 0.5 * correlation + 0.5 * np.diag(np.diag(correlation))
    expected = 0.5 * np.einsum("ji,ik,jk->j", z, np.linalg.pinv(shrunk), z) / 6
    np.testing.assert_allclose(density.energy(x, batch, 40).double().numpy(), expected, rtol=1e-4, atol=1e-6)


def test_a_density_weight_pulls_the_prototypes_statistics_towards_the_real_hbb_jets(toy):
    """With the density term, the prototypes' per-jet statistics end nearer the jets the model calls Hbb."""
    from torch_geometric.data import Batch

    from hin_captum.prototypes.manifold import JetDensity

    model, jets = toy
    data = Batch.from_data_list(list(jets))
    with torch.no_grad():
        hbb = torch.softmax(model(data.x, data.edge_index, data.batch), -1).argmax(1) == 1
    reference = Batch.from_data_list([jet for jet, chosen in zip(jets, hbb) if chosen])
    density = JetDensity.of_jets(reference.x, reference.batch, reference.num_graphs, shrinkage=0.5)
    energy = [float(density.energy(made.jets.x, made.jets.batch, 6).mean()) for made in
              (prototype(model, jets, n=6, seed=1, steps=40, refine_steps=10, density=weight) for weight in (0, 3))]
    assert energy[1] < energy[0]
