"""What every HTTP adapter shares: credentials from headers, error translation, logging."""
