"""The HTTP face of a node: a FastAPI app over `chain.node.Node`, its server, and a matching client.

Submodules are imported on use (`ailedger.api.app`, `.server`, `.client`) so that importing this
package stays cheap for the CLI.
"""
