"""The explorer: server-rendered pages where anyone can look into (and check) the whole ledger.

`app.add_explorer` adds the pages to a node's FastAPI app; `history` keeps what the state forgets
(per-block series, an account's transactions, reputation over time) in indexed tables; `chain_pages`
and `data_pages` turn ledger reads into what each template shows; `search` says where a query leads;
`source` is what they read through (a local node, or one elsewhere over its HTTP API).
Templates are Jinja2 with autoescaping on (record text and prompts are other people's input); pages
read without JavaScript, which only draws charts (uPlot, vendored at build time), checks Merkle proofs
in the browser, asks for an answer's re-verification and streams the playground.
"""
