"""The pipeline on a real Dask cluster (LocalCluster): the in-process results, resume by parts, failing units."""
import logging

import awkward as ak
import numpy as np
import pytest
import uproot

from hin_captum.config import load_config
from hin_captum.data.schema import CMS_HBB
from hin_captum.pipeline import dask_client, explain_sample
from hin_captum.output import RelevanceSummary
from tests.scripts.test_attribute import NON_FINITE, UNLABELED, write_toy, write_with_a_corrupt_basket
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
    run = explain_sample(settings(inputs, out, threads=1))[0]
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
        run = explain_sample(settings(inputs, tmp_path, threads=1), client,
                             lambda method, total: seen.append(total) or seen.append)[0]

    assert_same_results(tmp_path, expected_out)
    assert [f.status.value for f in run.files] == ["written", "written"]
    assert run.read.jets_kept == expected.read.jets_kept and run.read.dropped == expected.read.dropped
    assert sum(seen[1:]) == seen[0] == 22  # one progress bar over every entry
    assert sorted(p.name for p in (tmp_path / "lrp").iterdir()) == ["a.root", "b.root", "summary.root"]


def test_an_external_scheduler_gives_the_in_process_results(tmp_path, inputs, reference, cluster):
    with dask_client(workers=None, scheduler=cluster.scheduler_address, threads=1) as client:
        explain_sample(settings(inputs, tmp_path, threads=1), client)
    assert_same_results(tmp_path, reference[0])


def test_a_worker_killed_mid_run_is_survived_with_the_same_friend_files(tmp_path, inputs, reference):
    """SIGKILL of a real worker process while it explains: Dask reruns its units, the friend files are the same."""
    import os
    import signal
    import threading
    import time

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.CRITICAL) as local, distributed.Client(local) as client:
        pids = list(client.run(os.getpid).values())
        killed = []

        def kill_one_when_busy() -> None:
            deadline = time.time() + 60
            while time.time() < deadline and not killed:
                busy = [address for address, tasks in client.processing().items() if tasks]
                if busy:
                    pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                time.sleep(0.05)

        killer = threading.Thread(target=kill_one_when_busy)
        killer.start()
        run = explain_sample(settings(inputs, tmp_path, threads=1, step_size=2), client)[0]
        killer.join()
    assert killed and killed[0] in pids
    assert [f.status.value for f in run.files] == ["written", "written"]
    for name in ("a.root", "b.root"):  # equal to the in-process run of the same chunks
        with uproot.open(tmp_path / "lrp" / name) as file:
            got = file["relevance"].arrays()
        expected_out = tmp_path / "expected"
        if not (expected_out / "lrp" / name).exists():
            explain_sample(settings(inputs, expected_out, threads=1, step_size=2))
        with uproot.open(expected_out / "lrp" / name) as file:
            expected = file["relevance"].arrays()
        np.testing.assert_allclose(ak.flatten(got["rel_sum"]), ak.flatten(expected["rel_sum"]), rtol=1e-5, atol=1e-6)
        assert got["explained"].tolist() == expected["explained"].tolist()


def test_a_file_that_fails_on_the_cluster_gets_no_friend_file_and_the_rest_complete(tmp_path, inputs, cluster):
    broken = write_with_a_corrupt_basket(tmp_path / "broken.root")
    run_settings = settings([inputs[1], broken], tmp_path / "out", threads=1)

    with dask_client(workers=None, scheduler=cluster.scheduler_address, threads=1) as client:
        run = explain_sample(run_settings, client)[0]

    statuses = {f.input.rsplit("/", 1)[-1]: f for f in run.files}
    assert statuses["b.root"].status.value == "written" and statuses["broken.root"].status.value == "failed"
    assert statuses["broken.root"].reason.startswith("entries 4 to 8 could not be read (")
    assert sorted(p.name for p in (tmp_path / "out" / "lrp").iterdir()) == ["b.root", "summary.root"]
