"""The adversarial layer: recipes and names as a careless or hostile user would write them."""
