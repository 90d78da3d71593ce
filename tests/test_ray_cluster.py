"""Ray workers on a two-node cluster simulated on this machine (ray.cluster_utils.Cluster):
one worker per node, and the run finishes as on one machine."""

from __future__ import annotations

import pytest

ray = pytest.importorskip("ray")

from ray.cluster_utils import Cluster  # noqa: E402

from a2c.config.resolve import make_config  # noqa: E402
from a2c.run.train import train  # noqa: E402


@pytest.fixture(scope="module")
def two_nodes():
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, logging_level="ERROR", log_to_driver=False)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def test_one_worker_per_node(two_nodes, tmp_path):
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    cfg = make_config(
        {
            "workers": 2,
            "envs_per_worker": 2,
            "total_steps": 600,
            "eval_every": 0,
            "final_eval_episodes": 2,
            "progress": False,
            "run_dir": str(tmp_path / "two"),
        }
    )
    result = train(cfg, quiet=True)
    assert result.summary["worker_nodes"] == 2 and result.summary["total_steps"] == 600
