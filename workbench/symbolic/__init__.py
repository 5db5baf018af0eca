"""Layer 3: differentiation, compilation and display of traced graphs."""
