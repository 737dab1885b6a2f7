"""Drawing helpers every tool shares: image grids, strips and GIFs (Pillow) and matplotlib
figures drawn on the Agg canvas (no pyplot state)."""
