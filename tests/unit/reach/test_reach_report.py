"""What coordinators read: short text, no count under 5, and PNG charts."""

from reach.charts import network_map, prediction_chart
from reach.evaluate import Observed, evaluate
from reach.graph import ReachGraph
from reach.predict import predict
from reach.report import (
    MAX_LINES,
    count,
    district_stats,
    render_evaluation,
    render_seeds,
    render_stats,
    share,
)
from reach.seeding import choose_seeds
from reach.structure import analyse

PNG = b"\x89PNG\r\n\x1a\n"


def test_any_count_under_five_is_shown_as_under_five() -> None:
    assert [count(x) for x in (0, 1, 4, 4.4, 4.6, 5, 1234)] == [
        "<5", "<5", "<5", "<5", "5", "5", "1,234"]
    assert share(3, 10) == "<5"
    assert share(6, 12) == "50%"


def test_every_rendering_fits_a_chat_message(village_graph: ReachGraph) -> None:
    g = village_graph
    names = {"D1": "Townshire", "D2": "Villageshire"}
    s = analyse(g, seed=1)
    pred = predict(g, 0.2, ["!r0"], runs=300, seed=1)
    texts = [
        render_seeds(choose_seeds(g, 0.2, 12, seed=1), equity=0.5),
        render_evaluation(evaluate(pred.districts, {"D1": Observed(30, 0)}), names),
        render_stats(district_stats(g, s, {"D1": 3}, {"D1": 140}), names),
    ]
    for text in texts:
        assert 2 <= len(text.splitlines()) <= MAX_LINES
    assert "...and" in texts[0]  # 12 picks do not fit on 12 lines
    assert "Townshire" in texts[1]
    assert "Townshire: 0, 60" not in texts[2] and "Townshire: <5, 60, <5, 140" in texts[2]


def test_charts_are_png_images(village_graph: ReachGraph) -> None:
    g = village_graph
    pred = predict(g, 0.2, ["!r0"], runs=100, seed=1)
    chart = prediction_chart(evaluate(pred.districts, {"D1": Observed(30, 0)}))
    picture = network_map(g, analyse(g), max_nodes=80)
    village = network_map(g, analyse(g), area="V1")
    assert chart.startswith(PNG) and picture.startswith(PNG) and village.startswith(PNG)
    assert len(picture) > 10_000
