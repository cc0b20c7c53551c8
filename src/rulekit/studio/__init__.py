"""rulekit studio: a local web app to edit, see, run, test and compare a policy.

:mod:`.app` is the HTTP API the browser front end (``static/``) calls, on the
layers below: the checker and the analyses, the runtime on a simulated clock,
the scenario tools. :mod:`.files` keeps every read and write under the roots
the user named; :mod:`.gate` refuses requests without the page's token or for
another host. Needs the ``server`` extra.

Layer: the top, beside :mod:`rulekit.service`; imports every layer below.
"""
