"""One module per paper: `ganlib.models.<paper>` holds `Config` and the model."""
