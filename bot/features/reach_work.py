"""The reach model's heavy steps as module-level functions of plain records.

They run where :mod:`bot.offload` puts them (under the service, another process), so
a model build and a seed choice, mostly Python holding the GIL, hold up no one else's
command. Everything they take and give back crosses a process boundary: records and
the area tree in, text out.
"""

from __future__ import annotations

from bot.features import reach_network
from bot.features.reach_network import Records
from config.areas import AreaIndex


def seed_answer(records: Records, areas: AreaIndex, k: int, equity: float, notice: int) -> str:
    """``!reach seed``'s answer: the network built from ``records``, then the ``k`` rooms
    to post notice ``notice`` in for the most reach (weighted towards poorer places by
    ``equity``), as the report words it."""
    import numpy as np

    from reach import report
    from reach.seeding import choose_seeds, equity_weights

    net = reach_network.build(records, areas)
    graph = net.graph
    weights = equity_weights(graph, equity, np.maximum(graph.members, 1).astype(float))
    choice = choose_seeds(graph, net.p, k, weights=weights, eps=0.2, seed=notice)
    return report.render_seeds(choice, net.labels, equity)
