from manifold_lab.models.bayes import BayesOptimalClassifier  # noqa: F401
