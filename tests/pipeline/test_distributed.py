"""The pipeline on a real Dask cluster (LocalCluster): the in-process results, resume by parts, failing units."""
import logging

import awkward as ak
import numpy as np
import pytest
import uproot

from hin_captum.config import load_config
from hin_captum.data.schema import CMS_HBB
from hin_captum.pipeline.distributed import dask_client
from hin_captum.output import RelevanceSummary
from hin_captum.pipeline import PARTS_FOLDER, SampleExplainer
from tests.scripts.test_attribute import NON_FINITE, UNLABELED, write_toy
from tests.pipeline.test_run import settings

distributed = pytest.importorskip("dask.distributed")
TREE = CMS_HBB.tree


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    return [write_toy(folder / "a.root", 13, seed=51, unlabeled=[UNLABELED], non_finite=[NON_FINITE]),
            write_toy(folder / "b.root", 9, seed=52)]


@pytest.fixture(scope="module")
def cluster():
    """A scheduler and two worker processes, as a user's existing cluster would be."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as local:
        yield local


@pytest.fixture(scope="module")
def reference(tmp_path_factory, inputs):
    out = tmp_path_factory.mktemp("in_process")
    run = SampleExplainer(settings(inputs, out, threads=1)).run()[0]
    return out, run


def assert_same_results(out, expected_out, names=("a.root", "b.root")):
    """Friend trees: counts exactly, relevance within 1e-5 of its largest magnitude; summaries alike."""
    for name in names:
        with uproot.open(out / "lrp" / name) as file, uproot.open(expected_out / "lrp" / name) as other:
            got, expected = file["relevance"].arrays(), other["relevance"].arrays()
        assert got.fields == expected.fields and len(got) == len(expected)
        for field in expected.fields:
            a = ak.to_numpy(ak.flatten(got[field], axis=None)).astype(np.float64)
            b = ak.to_numpy(ak.flatten(expected[field], axis=None)).astype(np.float64)
            if np.issubdtype(ak.to_numpy(ak.flatten(expected[field], axis=None)).dtype, np.floating):
                np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * max(np.abs(b).max(), 1e-30), err_msg=field)
            else:
                np.testing.assert_array_equal(a, b, err_msg=field)
    got = RelevanceSummary.read(out / "lrp" / "summary.root")
    expected = RelevanceSummary.read(expected_out / "lrp" / "summary.root")
    assert got.jets == expected.jets
    for name, histogram in expected.histograms.items():
        np.testing.assert_allclose(got.histograms[name].values(flow=True), histogram.values(flow=True),
                                   rtol=1e-5, atol=1e-6, err_msg=name)


def test_a_local_cluster_gives_the_in_process_results(tmp_path, inputs, reference):
    expected_out, expected = reference
    seen = []

    with dask_client(workers=2, scheduler=None, threads=1) as client:
        run = SampleExplainer(settings(inputs, tmp_path, threads=1)).run(
            lambda method, total: seen.append(total) or seen.append, client)[0]

    assert_same_results(tmp_path, expected_out)
    assert [f.status for f in run.files] == ["written", "written"]
    assert run.read.jets_kept == expected.read.jets_kept and run.read.dropped == expected.read.dropped
    assert sum(seen[1:]) == seen[0] == 22  # one progress bar over every entry
    assert not (tmp_path / "lrp" / PARTS_FOLDER).exists()


def test_an_external_scheduler_gives_the_in_process_results(tmp_path, inputs, reference, cluster):
    with dask_client(workers=None, scheduler=cluster.scheduler_address, threads=1) as client:
        SampleExplainer(settings(inputs, tmp_path, threads=1)).run(client=client)
    assert_same_results(tmp_path, reference[0])


class Counting:
    """A client that counts the units it is asked to run."""

    def __init__(self, client):
        self.client, self.submitted = client, []

    def submit(self, function, *args, **kwargs):
        self.submitted.append(tuple(args[2:5]))  # (file, first entry, end)
        return self.client.submit(function, *args, **kwargs)

    def __getattr__(self, name):  # everything else as the client does it
        return getattr(self.client, name)


def test_a_rerun_redoes_only_the_parts_not_finished(tmp_path, inputs, reference, cluster):
    sample = SampleExplainer(settings(inputs, tmp_path, threads=1))
    ranges = sample.reader.chunk_ranges(0)
    finished = tmp_path / "lrp" / PARTS_FOLDER / "a" / f"{ranges[1][0]}.root"
    sample.write_part("lrp", 0, *ranges[1], finished)  # as an interrupted run would have left it
    stamp = finished.stat().st_mtime_ns

    with dask_client(workers=None, scheduler=cluster.scheduler_address, threads=1) as client:
        counting = Counting(client)
        SampleExplainer(settings(inputs, tmp_path, threads=1)).run(client=counting)

    all_units = [(0, *r) for r in ranges] + [(1, *r) for r in SampleExplainer(settings(inputs, tmp_path)).reader
                                             .chunk_ranges(1)]
    assert sorted(counting.submitted) == sorted(unit for unit in all_units if unit != (0, *ranges[1]))
    assert stamp and not finished.exists()  # used, then removed with the other parts after the join
    assert_same_results(tmp_path, reference[0])


def write_with_a_corrupt_basket(path):
    """Toy jets in two baskets; the second basket of track_pt overwritten with garbage."""
    write_toy(path, 8, seed=53)
    with uproot.open(path) as file:
        arrays = file[TREE].arrays()
    counts = ak.num(arrays["track_pt"])
    data = {"tracks": ak.zip({name: arrays[name] for name in arrays.fields if arrays[name].ndim == 2}),
            **{name: ak.to_numpy(arrays[name]) for name in arrays.fields if arrays[name].ndim == 1 and
               name != "n_tracks"}}
    with uproot.recreate(path) as file:
        tree = file.mktree(TREE, {name: value.type if isinstance(value, ak.Array) else value.dtype
                                  for name, value in data.items()},
                           counter_name=lambda _: "n_tracks", field_name=lambda _, inner: inner)
        tree.extend({name: value[:4] for name, value in data.items()})
        tree.extend({name: value[4:] for name, value in data.items()})
    with uproot.open(path) as file:
        branch = file[TREE]["track_pt"]
        seek, size = int(branch.member("fBasketSeek")[1]), int(branch.member("fBasketBytes")[1])
    assert len(counts) == 8
    with open(path, "r+b") as handle:
        handle.seek(seek + size - 40)
        handle.write(b"\xff" * 40)
    return path


def test_a_unit_that_keeps_failing_leaves_its_file_without_output_and_the_rest_complete(tmp_path, inputs, cluster):
    broken = write_with_a_corrupt_basket(tmp_path / "broken.root")
    run_settings = settings([inputs[1], broken], tmp_path / "out", threads=1)

    with dask_client(workers=None, scheduler=cluster.scheduler_address, threads=1) as client:
        run = SampleExplainer(run_settings).run(client=client, retries=1)[0]

    statuses = {f.input.rsplit("/", 1)[-1]: f.status for f in run.files}
    assert statuses["b.root"] == "written" and statuses["broken.root"].startswith("failed")
    assert sorted(p.name for p in (tmp_path / "out" / "lrp").glob("*.root")) == ["b.root", "summary.root"]
    assert (tmp_path / "out" / "lrp" / PARTS_FOLDER / "broken").exists()  # its good part waits for a rerun
