"""Normal component of the Bayes-optimal gradient on the vMF sphere mixture vs noise_std.

Prints ``|P_N grad log p(y|x)| / |grad log p(y|x)|`` at on-manifold points of a
``VonMisesFisherMixture`` (exact gradients, float64) for shrinking ``noise_std``,
next to the leading-order prediction of ``manifold_lab.data.normal_component``,
and the fitted log-log rate.

    OMP_NUM_THREADS=1 python benchmarks/measure_normal_component.py [--k 2] [--d 64] [--n 4000]
"""

import argparse

from manifold_lab.data.normal_component import normal_component_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=2, help="sphere dimension")
    parser.add_argument("--d", type=int, default=64, help="ambient dimension")
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--kappa", type=float, default=4.0, help="vMF concentration")
    parser.add_argument("--n", type=int, default=4000, help="on-manifold test points")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.3, 0.1, 0.03, 0.01, 0.003, 0.001])
    args = parser.parse_args()
    table = normal_component_table(args.noise, intrinsic_dim=args.k, ambient_dim=args.d,
                                   n_classes=args.classes, concentration=args.kappa, n_points=args.n,
                                   seed=args.seed)
    print(f"vMF mixture on S^{args.k} in R^{args.d}, {args.classes} classes, kappa={args.kappa}, "
          f"radius 1, {args.n} on-manifold points, true labels")
    print(table.format())


if __name__ == "__main__":
    main()
