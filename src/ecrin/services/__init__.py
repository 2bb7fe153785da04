"""The product's verbs. They know the store protocols, never HTTP nor a concrete backend."""
