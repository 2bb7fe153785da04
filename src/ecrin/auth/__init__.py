"""Who is calling: password hashing, app passwords, verified-credential cache."""
