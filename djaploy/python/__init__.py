"""The interpreter a host runs the app with: chosen, installed and recorded by configureserver.

`naming` (paths, keys, the Interpreter), `rules` (config's field checks), `settings` (one host's
resolved choice), `choice` (auto: system or uv), `uv` and `source` (the two providers' commands),
`cache` (source builds kept on the deploying machine), `record` (what deploys read back),
`provide` (configure_server's steps). Nothing here touches the system Python.
"""
