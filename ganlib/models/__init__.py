"""One module per paper: `ganlib.models.<paper>` holds `Config` and the model (DESIGN.md)."""

# The models `ganlib train MODEL` knows, in course order.
MODELS = ("cgan", "stackgan", "stackganpp")
