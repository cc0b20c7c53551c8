"""Hypothesis properties of the policy front ends (.rk text, YAML, compiled JSON artifacts).

test_robustness.py: any text or artifact data is checked without raising, and every
diagnostic is well-formed; test_yaml_structure.py: unknown and repeated YAML keys;
test_generated.py: generated valid policies compile alike in both forms and round-trip;
test_regressions.py: the bugs these properties found. The strategies are in
mutations.py (broken input) and generator.py (valid policies, in both forms).
"""
