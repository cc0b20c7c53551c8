"""rulekit's benchmark: how fast conditions run and compile, against a ceiling and peers.

Measured, on one seeded workload (the fast-refund condition over 100,000
plain Python records at a fixed ``now``):

- evaluations per second of rulekit and of each peer engine (cel-python,
  rule-engine, zen-engine), input conversion included, each as a ratio to
  the same condition hand-written in Python and passed through ``compile()``
  (the ceiling for code that rulekit generates), measured in the same run;
- compile time of the condition in every engine;
- compile time of 1,000 distinct generated conditions (parse + check, and
  with Python code generation), the cost of loading a large policy.

Why: rulekit compiles CEL to Python to stay close to hand-written code; the
ratio to that ceiling is the figure to watch, and the peers show what the
alternatives cost. Every engine's answers are checked against the baseline,
because a fast wrong answer is not a result.

Run ``./dev bench`` (or ``.venv/bin/python -m benchmarks [--quick]``); see README.md.
"""
