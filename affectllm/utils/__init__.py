"""Small helpers every layer may use: cache paths, hashing (fingerprints), quiet logging, the pickled-weights
guard, and the aliases that keep moved module paths working."""
