"""The language server of ``rulekit lsp``: rulekit's checks and names where the author types.

The features are pure functions of a document's text, so they are tested without a
client: :mod:`.document` (what kind of file it is, its check and diagnostics, the last
good parse editors need while the text is broken), :mod:`.index` (every name the
policy declares and every place it is used), :mod:`.features` (hover, definition,
references, completion, symbols, rename, formatting, over character offsets).
:mod:`.server` is the only module that knows the protocol: pygls (the ``lsp``
extra) wiring those functions to requests, positions converted to the client's.

Layer: part of :mod:`rulekit.tools`.
"""
