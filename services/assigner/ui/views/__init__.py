"""Page data of the explorer: one module per group of pages, each a plain function of the stores."""
