"""Symbolic (sympy) derivations behind manifold_lab's theorems.

Each module derives one result and exposes functions that return sympy
expressions, so tests can evaluate them and compare with the numeric code.
"""
