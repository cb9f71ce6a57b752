"""The reach model: who a notice will reach, where the network leaves people out,
where to post, and how predictions compared with what happened.

Pure numpy/scipy/networkx (igraph for Louvain, matplotlib for charts); no
Matrix and no database. The bot builds a graph from plain records
(``reach.graph.build_graph``) and calls:

- ``reach.predict.predict``: expected reach per district and locality, with intervals;
- ``reach.calibrate.fit_ic``: transmission probabilities from observed cascades;
- ``reach.structure.analyse`` then ``reach.gaps.find_gaps``: structural holes and gaps;
- ``reach.seeding.choose_seeds``: the k rooms for the most (need-weighted) reach;
- ``reach.evaluate.evaluate``: predicted against observed reach;
- ``reach.report`` / ``reach.charts``: text and PNGs; ``reach.suppress.count`` is the "<5" rule.
"""
