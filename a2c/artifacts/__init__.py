"""Layer 4: what a run leaves behind and how it is used: save, load, export, evaluate, GIF."""
